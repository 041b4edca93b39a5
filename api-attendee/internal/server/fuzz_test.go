package server_test

import (
	"testing"
)

// FuzzAttendeeWrites throws arbitrary bodies at every write route that takes one, the
// internal endpoint included. The invariant: never a 5xx, and a 4xx writes nothing.
// `task test` runs it for a short time; `task fuzz` for longer.
func FuzzAttendeeWrites(f *testing.F) {
	fx := setup(f)
	fx.mustConference(f, 1, 1_000_000)
	existing := fx.mustRegister(f, 1, "existing@example.com")
	routes := []struct {
		method, path string
		headers      []string
	}{
		{"POST", "/api/attendees/", nil},
		{"POST", "/api/conferences/1/attendees/", nil},
		{"PUT", existing.Href, nil},
		{"POST", "/internal/changes", bearer},
		{"POST", "/internal/repairs", bearer},
	}
	for _, seed := range []string{
		`{"conference": "/api/conferences/1/", "email": "a@example.com", "name": "A"}`,
		`{"conference": "1", "email": "b@example.com", "name": "B", "company_name": null}`,
		`{"email": "c@example.com", "name": "C"}`,
		`{"name": "\u0000"}`,
		`{"name": "\ud800"}`,
		`{"source": "s", "changes": [{"event_id": "e", "type": "conference.updated", "conference_id": 1, "version": 2, "occurred_at": "2026-01-01T00:00:00Z", "data": {"id": 1, "href": "/api/conferences/1/", "name": "N", "starts": "2027-01-01T00:00:00Z", "ends": "2027-01-02T00:00:00Z", "max_attendees": 1000000}}]}`,
		`{"source": "s", "repairs": [{"conference_id": 1, "replaces": 1, "change": null}]}`,
		`{}`, `[]`, `null`, `{"a":`, "\xff",
	} {
		for i := range routes {
			f.Add([]byte(seed), uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, route uint8) {
		r := routes[int(route)%len(routes)]
		before := fx.snapshot(t)
		resp := fx.doRaw(t, r.method, r.path, string(body), "application/json", r.headers...)
		if resp.status >= 500 {
			t.Fatalf("%s %s %q: status %d: %s", r.method, r.path, body, resp.status, resp.body)
		}
		if resp.status >= 400 {
			if after := fx.snapshot(t); before != after {
				t.Fatalf("%s %s %q answered %d but wrote: %+v -> %+v", r.method, r.path, body, resp.status, before, after)
			}
			checkProblem(t, resp, resp.status)
		}
	})
}
