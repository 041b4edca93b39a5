package server_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// badInput is a request that must be refused without changing anything.
type badInput struct {
	name        string
	method      string
	path        string
	body        string
	contentType string // default application/json
	want        int
	field       string // a field the problem must name, if any
}

// hostileBodies are refused by every write route, whatever it writes.
func hostileBodies(method, path string) []badInput {
	big := `{"name": "` + strings.Repeat("x", 2<<20) + `"}`
	return []badInput{
		{name: "malformed JSON", method: method, path: path, body: `{"name": `, want: 400},
		{name: "not an object", method: method, path: path, body: `[1, 2]`, want: 400},
		{name: "JSON null", method: method, path: path, body: `null`, want: 400},
		{name: "a bare string", method: method, path: path, body: `"name"`, want: 400},
		{name: "empty body", method: method, path: path, body: ``, want: 400},
		{name: "trailing content", method: method, path: path, body: `{} {}`, want: 400},
		{name: "trailing text", method: method, path: path, body: `{"name":"G2"} trailing`, want: 400},
		{name: "trailing bracket", method: method, path: path, body: `{"name":"G2"}]`, want: 400},
		{name: "trailing braces", method: method, path: path, body: `{"name":"G2"}}}}`, want: 400},
		{name: "NUL in an unknown field's name", method: method, path: path, body: `{"x\u0000": 1}`, want: 400},
		{name: "invalid UTF-8", method: method, path: path, body: "{\"name\": \"\xff\xfe\"}", want: 400},
		{name: "unknown field", method: method, path: path, body: `{"nmae": "typo"}`, want: 400, field: "nmae"},
		{name: "2 MiB body", method: method, path: path, body: big, want: 413},
		{name: "text/plain", method: method, path: path, body: `{}`, contentType: "text/plain", want: 415},
		{name: "form encoded", method: method, path: path, body: `name=x`, contentType: "application/x-www-form-urlencoded", want: 415},
		{name: "no content type", method: method, path: path, body: `{}`, contentType: "-", want: 415},
	}
}

// A gzip bomb: a small compressed body that inflates far past the body limit. It must be
// refused before anything inflates it.
func TestCompressedBodiesAreRefused(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(`{"name": "` + strings.Repeat("A", 64<<20) + `"}`)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	before := f.snapshot(t)
	for _, enc := range []string{"gzip", "deflate", "br", "GZIP"} {
		req, err := http.NewRequest("POST", f.base+"/api/locations/", bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", enc)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		checkProblem(t, checkAPI(t, req, response{status: resp.StatusCode, header: resp.Header, body: body}), 415)
	}
	if diff := cmp.Diff(before, f.snapshot(t)); diff != "" {
		t.Errorf("a compressed body changed the database:\n%s", diff)
	}
}

// nulInputs: a NUL character in each of fields, which Postgres text cannot hold, in an
// otherwise valid body; each must be 400 naming the field. valid nil means the body is the
// field alone (a PUT's subset).
func nulInputs(method, path string, valid map[string]any, fields ...string) []badInput {
	var out []badInput
	for _, field := range fields {
		body := map[string]any{}
		for k, v := range valid {
			body[k] = v
		}
		body[field] = "T\x00"
		data, err := json.Marshal(body)
		if err != nil {
			panic(err)
		}
		out = append(out, badInput{name: "NUL in " + field, method: method, path: path, body: string(data), want: 400, field: field})
	}
	return out
}

func runBadInputs(t *testing.T, f fixture, cases []badInput) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.name, func(t *testing.T) {
			before := f.snapshot(t)
			var r response
			switch tc.contentType {
			case "":
				r = f.doRaw(t, tc.method, tc.path, tc.body, "application/json")
			case "-":
				r = f.do(t, tc.method, tc.path, nil)
				if tc.body != "" {
					r = f.doRaw(t, tc.method, tc.path, tc.body, "")
				}
			default:
				r = f.doRaw(t, tc.method, tc.path, tc.body, tc.contentType)
			}
			p := checkProblem(t, r, tc.want)
			if tc.field != "" {
				var fields []string
				for _, e := range p.Errors {
					fields = append(fields, e.Field)
				}
				if !strings.Contains(strings.Join(fields, ","), tc.field) {
					t.Errorf("problem names fields %v, want %q among them: %s", fields, tc.field, r.body)
				}
			}
			if diff := cmp.Diff(before, f.snapshot(t)); diff != "" {
				t.Errorf("a refused request changed the database (-before +after):\n%s", diff)
			}
		})
	}
}

func validConferenceBody(locationID int64, change string) string {
	fields := map[string]string{
		"name": `"GopherCon"`, "starts": `"2027-03-01"`, "ends": `"2027-03-03"`, "description": `"Gophers"`,
		"max_presentations": `10`, "max_attendees": `100`, "location": fmt.Sprint(locationID),
	}
	if change != "" {
		k, v, _ := strings.Cut(change, "=")
		if v == "<absent>" {
			delete(fields, k)
		} else {
			fields[k] = v
		}
	}
	var parts []string
	for _, k := range []string{"name", "starts", "ends", "description", "max_presentations", "max_attendees", "location"} {
		if v, ok := fields[k]; ok {
			parts = append(parts, fmt.Sprintf("%q: %s", k, v))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func TestConferenceWritesRefuseBadInput(t *testing.T) {
	t.Parallel()
	f := setup(t)
	loc := f.mustLocation(t)
	existing := f.mustConference(t, loc.ID, "Existing")
	bad := func(change string) string { return validConferenceBody(loc.ID, change) }

	cases := hostileBodies("POST", "/api/conferences/")
	cases = append(cases, hostileBodies("PUT", existing.Href)...)
	for _, tc := range []struct {
		name, change, field string
	}{
		{"missing name", "name=<absent>", "name"},
		{"missing starts", "starts=<absent>", "starts"},
		{"missing location", "location=<absent>", "location"},
		{"empty name", `name=""`, "name"},
		{"blank name", `name="   "`, "name"},
		{"null name", `name=null`, "name"},
		{"name is a number", `name=42`, "name"},
		{"over-long name", fmt.Sprintf("name=%q", strings.Repeat("x", 201)), "name"},
		{"over-long description", fmt.Sprintf("description=%q", strings.Repeat("x", 10001)), "description"},
		{"NUL in name", `name="Go\u0000Con"`, "name"},
		{"ends before starts", `ends="2027-02-01"`, "ends"},
		{"unparsable date", `starts="next tuesday"`, "starts"},
		{"date as a number", `starts=20270301`, "starts"},
		{"year 10000", `ends="10000-01-01T00:00:00Z"`, "ends"},
		{"impossible date", `starts="2027-02-30"`, "starts"},
		{"negative max_attendees", `max_attendees=-1`, "max_attendees"},
		{"negative as string", `max_attendees="-5"`, "max_attendees"},
		{"huge max_attendees", `max_attendees=1e30`, "max_attendees"},
		{"fractional max_attendees", `max_attendees=1.5`, "max_attendees"},
		{"non-numeric string", `max_presentations="ten"`, "max_presentations"},
		{"boolean count", `max_presentations=true`, "max_presentations"},
		{"unknown location", `location=999999`, "location"},
		{"zero location", `location=0`, "location"},
		{"location as object", `location={"id": 1}`, "location"},
		{"location as a wrong href", `location="/api/locations/abc/"`, "location"},
	} {
		cases = append(cases, badInput{name: tc.name, method: "POST", path: "/api/conferences/", body: bad(tc.change), want: 400, field: tc.field})
		if !strings.HasSuffix(tc.change, "<absent>") {
			// PUT takes a subset; the same bad field alone must be refused too.
			k, v, _ := strings.Cut(tc.change, "=")
			cases = append(cases, badInput{name: tc.name, method: "PUT", path: existing.Href, body: fmt.Sprintf("{%q: %s}", k, v), want: 400, field: tc.field})
		}
	}
	conferenceFields := []string{"name", "starts", "ends", "description", "location"}
	cases = append(cases, nulInputs("POST", "/api/conferences/", map[string]any{
		"name": "GopherCon", "starts": "2027-03-01", "ends": "2027-03-03", "description": "Gophers",
		"max_presentations": 10, "max_attendees": 100, "location": loc.ID,
	}, conferenceFields...)...)
	cases = append(cases, nulInputs("PUT", existing.Href, nil, conferenceFields...)...)
	cases = append(cases,
		badInput{name: "ends before the stored starts", method: "PUT", path: existing.Href, body: `{"ends": "2027-01-01"}`, want: 400, field: "ends"},
		badInput{name: "unknown conference", method: "PUT", path: "/api/conferences/999999/", body: `{"name": "x"}`, want: 404},
		badInput{name: "non-numeric id", method: "PUT", path: "/api/conferences/abc/", body: `{"name": "x"}`, want: 404},
		badInput{name: "unknown conference", method: "DELETE", path: "/api/conferences/999999/", want: 404},
	)
	runBadInputs(t, f, cases)
}

func TestLocationWritesRefuseBadInput(t *testing.T) {
	t.Parallel()
	f := setup(t)
	loc := f.mustLocation(t)
	f.mustConference(t, loc.ID, "Keeps the location busy")
	cases := append(hostileBodies("POST", "/api/locations/"), hostileBodies("PUT", loc.Href)...)
	for _, tc := range []struct{ name, body, field string }{
		{"missing everything", `{}`, "name"},
		{"missing state", `{"name": "Hall", "city": "Austin", "room_count": 3}`, "state"},
		{"unknown state", `{"name": "Hall", "city": "Austin", "room_count": 3, "state": "ZZ"}`, "state"},
		{"state spelled out", `{"name": "Hall", "city": "Austin", "room_count": 3, "state": "Texas"}`, "state"},
		{"state as a number", `{"name": "Hall", "city": "Austin", "room_count": 3, "state": 48}`, "state"},
		{"negative rooms", `{"name": "Hall", "city": "Austin", "room_count": -3, "state": "TX"}`, "room_count"},
		{"rooms as words", `{"name": "Hall", "city": "Austin", "room_count": "three", "state": "TX"}`, "room_count"},
		{"script URL", `{"name": "Hall", "city": "Austin", "room_count": 3, "state": "TX", "picture_url": "javascript:alert(1)"}`, "picture_url"},
		{"over-long city", fmt.Sprintf(`{"name": "Hall", "city": %q, "room_count": 3, "state": "TX"}`, strings.Repeat("c", 201)), "city"},
		{"NUL in name", `{"name": "\u0000", "city": "Austin", "room_count": 3, "state": "TX"}`, "name"},
	} {
		cases = append(cases, badInput{name: tc.name, method: "POST", path: "/api/locations/", body: tc.body, want: 400, field: tc.field})
	}
	// As issue 10 found it: {"name":"L","city":"C","room_count":1,"state":"T\u0000"} was a 500.
	cases = append(cases, badInput{name: "NUL in state, as reported", method: "POST", path: "/api/locations/",
		body: `{"name":"L","city":"C","room_count":1,"state":"T\u0000"}`, want: 400, field: "state"})
	locationFields := []string{"name", "city", "state", "picture_url"}
	cases = append(cases, nulInputs("POST", "/api/locations/", map[string]any{"name": "L", "city": "C", "room_count": 1, "state": "TX"}, locationFields...)...)
	cases = append(cases, nulInputs("PUT", loc.Href, nil, locationFields...)...)
	cases = append(cases,
		badInput{name: "unknown state", method: "PUT", path: loc.Href, body: `{"state": "XX"}`, want: 400, field: "state"},
		badInput{name: "empty name", method: "PUT", path: loc.Href, body: `{"name": ""}`, want: 400, field: "name"},
		badInput{name: "unknown location", method: "PUT", path: "/api/locations/999999/", body: `{"name": "x"}`, want: 404},
		badInput{name: "location with conferences", method: "DELETE", path: loc.Href, want: 409},
		badInput{name: "unknown location", method: "DELETE", path: "/api/locations/999999/", want: 404},
	)
	runBadInputs(t, f, cases)
}

func TestPresentationWritesRefuseBadInput(t *testing.T) {
	t.Parallel()
	f := setup(t)
	loc := f.mustLocation(t)
	c := f.mustConference(t, loc.ID, "GopherCon")
	other := f.mustConference(t, loc.ID, "Other")
	var p presentation
	f.must(t, 201, "POST", c.Href+"presentations/", map[string]any{"presenter_name": "Ada", "presenter_email": "ada@example.com", "title": "Go", "synopsis": "Why"}, &p)
	path := c.Href + "presentations/"
	cases := append(hostileBodies("POST", path), hostileBodies("PUT", p.Href)...)
	for _, tc := range []struct{ name, body, field string }{
		{"missing title", `{"presenter_name": "Ada", "presenter_email": "ada@example.com", "synopsis": ""}`, "title"},
		{"bad e-mail", `{"presenter_name": "Ada", "presenter_email": "not-an-address", "title": "Go", "synopsis": ""}`, "presenter_email"},
		{"e-mail with a name", `{"presenter_name": "Ada", "presenter_email": "Ada <ada@example.com>", "title": "Go", "synopsis": ""}`, "presenter_email"},
		{"over-long title", fmt.Sprintf(`{"presenter_name": "Ada", "presenter_email": "ada@example.com", "title": %q, "synopsis": ""}`, strings.Repeat("t", 201)), "title"},
		{"other conference", fmt.Sprintf(`{"presenter_name": "Ada", "presenter_email": "ada@example.com", "title": "Go", "synopsis": "", "conference": %q}`, other.Href), "conference"},
	} {
		cases = append(cases, badInput{name: tc.name, method: "POST", path: path, body: tc.body, want: 400, field: tc.field})
	}
	presentationFields := []string{"presenter_name", "company_name", "presenter_email", "title", "synopsis", "conference"}
	cases = append(cases, nulInputs("POST", path, map[string]any{
		"presenter_name": "Ada", "presenter_email": "ada@example.com", "title": "Go", "synopsis": "Why", "company_name": "E",
	}, presentationFields...)...)
	cases = append(cases, nulInputs("PUT", p.Href, nil, presentationFields...)...)
	cases = append(cases,
		badInput{name: "unknown conference", method: "POST", path: "/api/conferences/999999/presentations/", body: `{"presenter_name": "Ada", "presenter_email": "ada@example.com", "title": "Go", "synopsis": ""}`, want: 404},
		badInput{name: "bad e-mail", method: "PUT", path: p.Href, body: `{"presenter_email": "@"}`, want: 400, field: "presenter_email"},
		badInput{name: "status is not writable", method: "PUT", path: p.Href, body: `{"status": "APPROVED"}`, want: 400, field: "status"},
		badInput{name: "unknown presentation", method: "PUT", path: "/api/presentations/999999/approval/", want: 404},
		badInput{name: "unknown presentation", method: "DELETE", path: "/api/presentations/999999/", want: 404},
	)
	runBadInputs(t, f, cases)
}
