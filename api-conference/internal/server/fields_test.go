package server_test

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestEveryFieldComesBack ties the hops of a field between the HTTP body and the stored row
// that no compiler checks: the decoder's list of fields, decodeConference and
// toConferenceDetail. Every property the OpenAPI document says a create or update takes is
// sent with a value of its own; the answer must carry each value back, after a create and
// after an update that changes them all.
func TestEveryFieldComesBack(t *testing.T) {
	t.Parallel()
	f := setup(t)
	props := writableProperties(t, "ConferenceUpdate")
	loc := f.mustLocation(t)
	for round, method := range []string{"POST", "PUT"} {
		body := map[string]any{}
		for i, name := range props.names {
			body[name] = props.value(t, name, i+10*round, loc.ID)
		}
		path := "/api/conferences/"
		var created struct {
			ID int64 `json:"id"`
		}
		if method == "PUT" {
			path = fmt.Sprintf("/api/conferences/%d/", props.id)
		}
		f.must(t, map[string]int{"POST": 201, "PUT": 200}[method], method, path, body, &created)
		if method == "POST" {
			props.id = created.ID
		}
		var got struct {
			Conference map[string]json.RawMessage `json:"conference"`
		}
		f.must(t, 200, "GET", fmt.Sprintf("/api/conferences/%d/", props.id), nil, &got)
		for _, name := range props.names {
			props.check(t, method, name, body[name], got.Conference[name], loc.ID)
		}
	}
}

// properties are a schema's properties by name, with the kind of value each takes.
type properties struct {
	names []string
	kinds map[string]string // "time", "count", "text", "location"
	id    int64             // the conference made by the POST
}

// writableProperties reads schema's properties from the service's OpenAPI document.
func writableProperties(t *testing.T, schema string) *properties {
	t.Helper()
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Ref  string `json:"$ref"`
					Type any    `json:"type"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	p := &properties{kinds: map[string]string{}}
	for name, s := range doc.Components.Schemas[schema].Properties {
		switch {
		case name == "location":
			p.kinds[name] = "location"
		case s.Ref == "#/components/schemas/TimeInput":
			p.kinds[name] = "time"
		case s.Ref == "#/components/schemas/CountInput":
			p.kinds[name] = "count"
		case fmt.Sprint(s.Type) == "string" || fmt.Sprint(s.Type) == "[string null]":
			p.kinds[name] = "text"
		default:
			t.Fatalf("%s.%s: teach TestEveryFieldComesBack a property like %+v", schema, name, s)
		}
		p.names = append(p.names, name)
	}
	if len(p.names) < 7 {
		t.Fatalf("%s has %d properties; the test would compare almost nothing", schema, len(p.names))
	}
	return p
}

// value is what property name is sent as in round n: each its own, ends after starts.
func (p *properties) value(t *testing.T, name string, n int, location int64) any {
	switch p.kinds[name] {
	case "location":
		return location
	case "time":
		day := time.Date(2027, 4, 1+n, 9, 0, 0, 0, time.UTC)
		if name == "ends" {
			day = day.AddDate(0, 0, 3)
		}
		return day.Format(time.RFC3339)
	case "count":
		return 20 + len(name) + n
	}
	return fmt.Sprintf("%s %d", name, n)
}

// check fails unless got, from the detail, is sent.
func (p *properties) check(t *testing.T, method, name string, sent any, got json.RawMessage, location int64) {
	t.Helper()
	if got == nil {
		t.Errorf("after %s: the detail has no %q", method, name)
		return
	}
	switch p.kinds[name] {
	case "location":
		var l struct {
			Href string `json:"href"`
		}
		if err := json.Unmarshal(got, &l); err != nil || l.Href != fmt.Sprintf("/api/locations/%d/", location) {
			t.Errorf("after %s: location = %s; want location %d", method, got, location)
		}
	case "time":
		var at time.Time
		want, _ := time.Parse(time.RFC3339, sent.(string))
		if err := json.Unmarshal(got, &at); err != nil || !at.Equal(want) {
			t.Errorf("after %s: %s = %s; sent %v", method, name, got, sent)
		}
	default:
		var v any
		if err := json.Unmarshal(got, &v); err != nil || fmt.Sprint(v) != fmt.Sprint(sent) {
			t.Errorf("after %s: %s = %s; sent %v", method, name, got, sent)
		}
	}
}
