package server_test

import (
	"fmt"
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
	contentType string   // default application/json; "-" sends none
	headers     []string // extra name, value pairs
	want        int
	field       string // a field the problem must name, if any
}

// hostileBodies are refused by every write route, whatever it writes.
func hostileBodies(method, path string, headers ...string) []badInput {
	big := `{"name": "` + strings.Repeat("x", 2<<20) + `"}`
	cases := []badInput{
		{name: "malformed JSON", body: `{"name": `, want: 400},
		{name: "not an object", body: `[1, 2]`, want: 400},
		{name: "JSON null", body: `null`, want: 400},
		{name: "a bare string", body: `"name"`, want: 400},
		{name: "empty body", body: ``, want: 400},
		{name: "trailing content", body: `{} {}`, want: 400},
		{name: "trailing text", body: `{"name":"G2"} trailing`, want: 400},
		{name: "trailing bracket", body: `{"name":"G2"}]`, want: 400},
		{name: "trailing braces", body: `{"name":"G2"}}}}`, want: 400},
		{name: "trailing text after a valid-looking object", body: `{"changes": []} x`, want: 400},
		{name: "invalid UTF-8", body: "{\"name\": \"\xff\xfe\"}", want: 400},
		{name: "2 MiB body", body: big, want: 413},
		{name: "text/plain", body: `{}`, contentType: "text/plain", want: 415},
		{name: "form encoded", body: `name=x`, contentType: "application/x-www-form-urlencoded", want: 415},
		{name: "no content type", body: `{}`, contentType: "-", want: 415},
	}
	for i := range cases {
		cases[i].method, cases[i].path, cases[i].headers = method, path, headers
	}
	gzipped := badInput{name: "gzip-encoded", method: method, path: path, body: "\x1f\x8b\x08\x00\x00\x00\x00\x00", want: 415}
	gzipped.headers = append([]string{"Content-Encoding", "gzip"}, headers...)
	return append(cases, gzipped)
}

func runBadInputs(t *testing.T, f fixture, cases []badInput) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path+" "+tc.name, func(t *testing.T) {
			before := f.snapshot(t)
			var r response
			switch tc.contentType {
			case "":
				r = f.doRaw(t, tc.method, tc.path, tc.body, "application/json", tc.headers...)
			case "-":
				r = f.doRaw(t, tc.method, tc.path, tc.body, "", tc.headers...)
			default:
				r = f.doRaw(t, tc.method, tc.path, tc.body, tc.contentType, tc.headers...)
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

// attendeeBody is a valid registration with one field changed ("k=<json>") or removed ("k=<absent>").
func attendeeBody(withConference bool, change string) string {
	fields := map[string]string{"email": `"new@example.com"`, "name": `"New Person"`, "company_name": `"Acme"`}
	order := []string{"email", "name", "company_name"}
	if withConference {
		fields["conference"] = `"/api/conferences/1/"`
		order = append([]string{"conference"}, order...)
	}
	if change != "" {
		k, v, _ := strings.Cut(change, "=")
		if v == "<absent>" {
			delete(fields, k)
		} else {
			fields[k] = v
		}
		if !strings.Contains(strings.Join(order, ","), k) {
			order = append(order, k)
		}
	}
	var parts []string
	for _, k := range order {
		if v, ok := fields[k]; ok {
			parts = append(parts, fmt.Sprintf("%q: %s", k, v))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// fieldCases are bad values of the attendee fields, refused by every route that writes them.
var fieldCases = []struct{ name, change, field string }{
	{"missing e-mail", "email=<absent>", "email"},
	{"missing name", "name=<absent>", "name"},
	{"empty name", `name=""`, "name"},
	{"blank name", `name="   "`, "name"},
	{"null name", `name=null`, "name"},
	{"name is a number", `name=42`, "name"},
	{"name is an object", `name={"first": "Ada"}`, "name"},
	{"over-long name", fmt.Sprintf("name=%q", strings.Repeat("x", 201)), "name"},
	{"over-long company", fmt.Sprintf("company_name=%q", strings.Repeat("x", 201)), "company_name"},
	{"NUL in name", `name="Ada\u0000Lovelace"`, "name"},
	{"NUL in company", `company_name="\u0000"`, "company_name"},
	{"NUL in e-mail", `email="ada\u0000@example.com"`, "email"},
	{"bad e-mail", `email="not-an-address"`, "email"},
	{"e-mail with a display name", `email="Ada <ada@example.com>"`, "email"},
	{"e-mail without a dot", `email="ada@localhost"`, "email"},
	{"over-long e-mail", fmt.Sprintf("email=%q", strings.Repeat("a", 250)+"@example.com"), "email"},
	{"e-mail is a number", `email=7`, "email"},
	{"unknown field", `nmae="typo"`, "nmae"},
}

func TestAttendeeWritesRefuseBadInput(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mustConference(t, 1, 100)
	existing := f.mustRegister(t, 1, "existing@example.com")
	other := f.mustRegister(t, 1, "other@example.com")

	var cases []badInput
	for _, route := range []struct{ method, path string }{
		{"POST", "/api/conferences/1/attendees/"},
		{"POST", "/api/attendees/"},
		{"PUT", existing.Href},
	} {
		cases = append(cases, hostileBodies(route.method, route.path)...)
		for _, fc := range fieldCases {
			flat := route.path == "/api/attendees/"
			body := attendeeBody(flat, fc.change)
			if route.method == "PUT" {
				if strings.HasSuffix(fc.change, "<absent>") {
					continue // PUT takes a subset
				}
				// The bad field alone.
				k, v, _ := strings.Cut(fc.change, "=")
				body = fmt.Sprintf("{%q: %s}", k, v)
			}
			cases = append(cases, badInput{name: fc.name, method: route.method, path: route.path, body: body, want: 400, field: fc.field})
		}
	}
	for _, tc := range []struct{ name, change, field string }{
		{"missing conference", "conference=<absent>", "conference"},
		{"null conference", "conference=null", "conference"},
		{"zero conference", "conference=0", "conference"},
		{"negative conference", `conference="-3"`, "conference"},
		{"fractional conference", "conference=1.5", "conference"},
		{"conference as words", `conference="seven"`, "conference"},
		{"conference as an object", `conference={"id": 1}`, "conference"},
		{"conference as a bad href", `conference="/api/conferences/abc/"`, "conference"},
		{"conference href of another kind", `conference="/api/locations/1/"`, "conference"},
		{"huge conference id", "conference=1e30", "conference"},
		{"NUL in conference", `conference="/api/conferences/1/\u0000"`, "conference"},
	} {
		cases = append(cases, badInput{name: tc.name, method: "POST", path: "/api/attendees/", body: attendeeBody(true, tc.change), want: 400, field: tc.field})
	}
	cases = append(cases,
		badInput{name: "conference in the nested route", method: "POST", path: "/api/conferences/1/attendees/", body: attendeeBody(false, `conference=1`), want: 400, field: "conference"},
		badInput{name: "moving to another conference", method: "PUT", path: existing.Href, body: `{"conference": 2}`, want: 400, field: "conference"},
		badInput{name: "taken e-mail", method: "PUT", path: other.Href, body: `{"email": "existing@example.com"}`, want: 409},
		badInput{name: "taken e-mail in other case", method: "PUT", path: other.Href, body: `{"email": "Existing@Example.com"}`, want: 409},
		badInput{name: "unknown attendee", method: "PUT", path: "/api/attendees/999999/", body: `{"name": "x"}`, want: 404},
		badInput{name: "non-numeric id", method: "PUT", path: "/api/attendees/abc/", body: `{"name": "x"}`, want: 404},
		badInput{name: "unknown attendee", method: "DELETE", path: "/api/attendees/999999/", want: 404},
		badInput{name: "unknown attendee", method: "POST", path: "/api/attendees/999999/badge/", want: 404},
		badInput{name: "unknown conference", method: "POST", path: "/api/conferences/999999/attendees/", body: attendeeBody(false, ""), want: 404},
		badInput{name: "non-numeric conference", method: "POST", path: "/api/conferences/x/attendees/", body: attendeeBody(false, ""), want: 404},
	)
	runBadInputs(t, f, cases)
}
