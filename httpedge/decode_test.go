package httpedge_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/go-cmp/cmp"

	"conferencego/httpedge"
)

// decoded is what the test route read from an Object, rendered back as JSON.
type decoded struct {
	Name    *string    `json:"name"`
	Note    *string    `json:"note"`
	Rooms   *int64     `json:"rooms"`
	Seats   *int       `json:"seats"`
	Place   *int64     `json:"place"`
	Starts  *time.Time `json:"starts"`
	Missing bool       `json:"missing"`
}

// objectApp answers POST /object with what DecodeObject and the field readers made of the
// body, or their problem.
func objectApp(tb testing.TB) *fiber.App {
	app, _ := newApp(tb)
	app.Post("/object", func(c *fiber.Ctx) error {
		o, err := httpedge.DecodeObject(c, "name", "note", "rooms", "seats", "place", "starts")
		if err != nil {
			return err
		}
		out := decoded{
			Name: o.Str("name", false), Note: o.Str("note", true), Rooms: o.Integer("rooms"),
			Seats: o.Count("seats", 100), Place: o.Ref("place", "/api/places/"), Starts: o.When("starts"),
		}
		if _, given := o.Raw("name"); !given {
			out.Missing = true
			o.Add("name", "is required")
		}
		if err := o.Err(); err != nil {
			return err
		}
		return c.JSON(out)
	})
	return app
}

func TestDecodeObjectReadsFields(t *testing.T) {
	t.Parallel()
	app := objectApp(t)
	for _, tc := range []struct {
		name, body string
		want       string
	}{
		{"numbers as numbers", `{"name": "A", "rooms": 12, "seats": 7, "place": 3}`, `{"name":"A","note":null,"rooms":12,"seats":7,"place":3,"starts":null,"missing":false}`},
		// As the original's HTML forms sent them.
		{"numbers as strings", `{"name": "A", "rooms": " 12 ", "seats": "7", "place": "3"}`, `{"name":"A","note":null,"rooms":12,"seats":7,"place":3,"starts":null,"missing":false}`},
		{"whole floats", `{"name": "A", "rooms": 1e2, "seats": 7.0}`, `{"name":"A","note":null,"rooms":100,"seats":7,"place":null,"starts":null,"missing":false}`},
		{"href reference", `{"name": "A", "place": "/api/places/9/"}`, `{"name":"A","note":null,"rooms":null,"seats":null,"place":9,"starts":null,"missing":false}`},
		{"nullable null", `{"name": "A", "note": null}`, `{"name":"A","note":"","rooms":null,"seats":null,"place":null,"starts":null,"missing":false}`},
		{"date only", `{"name": "A", "starts": "2027-03-01"}`, `{"name":"A","note":null,"rooms":null,"seats":null,"place":null,"starts":"2027-03-01T00:00:00Z","missing":false}`},
		{"time in UTC", `{"name": "A", "starts": "2027-03-01T09:00:00+02:00"}`, `{"name":"A","note":null,"rooms":null,"seats":null,"place":null,"starts":"2027-03-01T07:00:00Z","missing":false}`},
		{"whitespace around", " \n{\"name\": \"A\"}\r\n\t", `{"name":"A","note":null,"rooms":null,"seats":null,"place":null,"starts":null,"missing":false}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := send(t, app, "POST", "/object", tc.body, "Content-Type", "application/json")
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if diff := cmp.Diff(tc.want, string(r.body)); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeObjectRefusesBadInput(t *testing.T) {
	t.Parallel()
	app := objectApp(t)
	for _, tc := range []struct {
		name, body, contentType string
		want                    int
		fields                  []httpedge.FieldError // nil: no field errors expected
	}{
		{name: "empty", body: "", want: 400},
		{name: "blank", body: " \n ", want: 400},
		{name: "null", body: "null", want: 400},
		{name: "array", body: `[{"name": "A"}]`, want: 400},
		{name: "string", body: `"A"`, want: 400},
		{name: "syntax error", body: `{"name": }`, want: 400},
		{name: "two objects", body: `{"name": "A"} {"name": "B"}`, want: 400},
		{name: "trailing bracket", body: `{"name": "A"}]`, want: 400},
		{name: "trailing text", body: `{"name": "A"} and more`, want: 400},
		{name: "invalid UTF-8", body: "{\"name\": \"\xff\xfe\"}", want: 400},
		{name: "NUL in a value", body: `{"name": "A\u0000"}`, want: 400, fields: []httpedge.FieldError{{Field: "name", Message: "must not contain NUL characters"}}},
		{name: "NUL in a key", body: `{"x\u0000": 1}`, want: 400, fields: []httpedge.FieldError{{Field: "x\x00", Message: "must not contain NUL characters"}}},
		{name: "NUL nested", body: `{"name": "A", "note": {"a": [1, "ok", {"b": "\u0000"}]}}`, want: 400, fields: []httpedge.FieldError{{Field: "note.a[2].b", Message: "must not contain NUL characters"}}},
		{name: "unknown and missing together", body: `{"nmae": "typo"}`, want: 400, fields: []httpedge.FieldError{
			{Field: "nmae", Message: "is not a known field"}, {Field: "name", Message: "is required"}}},
		{name: "wrong types", body: `{"name": null, "rooms": 1.5, "seats": -1, "place": 0, "starts": 7}`, want: 400, fields: []httpedge.FieldError{
			{Field: "name", Message: "must be a string, not null"},
			{Field: "rooms", Message: "must be a whole number"},
			{Field: "seats", Message: "must be between 0 and 100"},
			{Field: "place", Message: "must be the id of an existing resource (a positive whole number)"},
			{Field: "starts", Message: "must be a string: an RFC 3339 time or a YYYY-MM-DD date"},
		}},
		// A string holds digits, as a form sends them; a JSON number may still be written 1e2.
		{name: "numbers in strings that are not digits", body: `{"name": "A", "rooms": "1e2", "seats": "0x10", "place": "+7"}`, want: 400, fields: []httpedge.FieldError{
			{Field: "rooms", Message: "must be a whole number"},
			{Field: "seats", Message: "must be a whole number"},
			{Field: "place", Message: "must be the id of an existing resource (a positive whole number)"},
		}},
		{name: "bad href and time", body: `{"name": "A", "place": "/api/places/x/", "starts": "tomorrow"}`, want: 400, fields: []httpedge.FieldError{
			{Field: "place", Message: "must be an id or an href like /api/places/7/"},
			{Field: "starts", Message: "must be an RFC 3339 time (2027-03-01T09:00:00Z) or a date (2027-03-01)"},
		}},
		{name: "text/plain", body: `{"name": "A"}`, contentType: "text/plain", want: 415},
		{name: "no content type", body: `{"name": "A"}`, contentType: "-", want: 415},
		{name: "problem+json is JSON", body: `{"name": "A"}`, contentType: "application/problem+json; charset=utf-8", want: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ct := tc.contentType
			switch ct {
			case "":
				ct = "application/json"
			case "-":
				ct = ""
			}
			r := send(t, app, "POST", "/object", tc.body, "Content-Type", ct)
			if tc.want == 200 {
				if r.status != 200 {
					t.Errorf("status %d: %s", r.status, r.body)
				}
				return
			}
			p := problemOf(t, r, tc.want)
			if diff := cmp.Diff(tc.fields, p.Errors); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeStrict(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t)
	type shape struct {
		Source  string   `json:"source"`
		Changes []string `json:"changes"`
	}
	app.Post("/strict", func(c *fiber.Ctx) error {
		var s shape
		if err := httpedge.DecodeStrict(c, &s); err != nil {
			return err
		}
		return c.JSON(s)
	})
	for _, tc := range []struct {
		name, body string
		want       int
		field      string
	}{
		{"valid", `{"source": "a", "changes": ["x"]}`, 200, ""},
		{"unknown field", `{"source": "a", "extra": 1}`, 400, ""},
		{"wrong type", `{"source": 1}`, 400, ""},
		{"array", `[]`, 400, ""},
		{"empty", ``, 400, ""},
		{"trailing", `{"source": "a"}{}`, 400, ""},
		{"NUL", `{"source": "a", "changes": ["ok", "\u0000"]}`, 400, "changes[1]"},
		{"invalid UTF-8", "{\"source\": \"\xff\"}", 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := send(t, app, "POST", "/strict", tc.body, "Content-Type", "application/json")
			if tc.want == 200 {
				var got shape
				if r.status != 200 || json.Unmarshal(r.body, &got) != nil || got.Source != "a" {
					t.Errorf("status %d: %s", r.status, r.body)
				}
				return
			}
			p := problemOf(t, r, tc.want)
			if tc.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tc.field) {
				t.Errorf("field errors %+v, want one for %s", p.Errors, tc.field)
			}
		})
	}
}

func TestIDParam(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t)
	app.Get("/things/:id", func(c *fiber.Ctx) error {
		id, err := httpedge.IDParam(c, "id", "thing")
		if err != nil {
			return err
		}
		return c.SendString(fmt.Sprint(id))
	})
	if r := send(t, app, "GET", "/things/42", ""); r.status != 200 || string(r.body) != "42" {
		t.Errorf("/things/42: %d %s", r.status, r.body)
	}
	// An id that cannot exist is simply not found, never a 400 or 500.
	for _, id := range []string{"abc", "0", "-1", "99999999999999999999", "1.5"} {
		p := problemOf(t, send(t, app, "GET", "/things/"+id, ""), 404)
		if !strings.Contains(p.Detail, "thing") {
			t.Errorf("/things/%s: detail %q does not name the thing", id, p.Detail)
		}
	}
}
