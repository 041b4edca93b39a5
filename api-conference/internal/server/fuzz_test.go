package server_test

import (
	"context"
	"testing"
)

// counts is a cheap form of snapshot for the fuzzer, which may create thousands of rows.
func (f fixture) counts(tb testing.TB) [4]int64 {
	tb.Helper()
	var c [4]int64
	err := f.db.NewRaw(`SELECT (SELECT count(*) FROM conferences), (SELECT count(*) FROM outbox),
		(SELECT coalesce(sum(version), 0) FROM conferences), (SELECT coalesce(sum(n), 0) FROM change_marker)`).
		Scan(context.Background(), &c[0], &c[1], &c[2], &c[3])
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// FuzzConferenceWrites throws arbitrary bodies at the conference create and update handlers.
// The invariant: never a 5xx, and a 4xx writes nothing — no row, no version, no outbox event.
// `task test` runs it for a short time; `task fuzz` for longer.
func FuzzConferenceWrites(f *testing.F) {
	fx := setup(f)
	loc := fx.mustLocation(f)
	existing := fx.mustConference(f, loc.ID, "Existing")
	for _, seed := range []string{
		validConferenceBody(loc.ID, ""),
		validConferenceBody(loc.ID, `max_attendees="100"`),
		validConferenceBody(loc.ID, `ends="2027-01-01"`),
		validConferenceBody(loc.ID, `location="/api/locations/1/"`),
		`{"name": "Renamed"}`,
		`{"starts": "2027-03-01T09:00:00.123456789+05:30"}`,
		`{"max_presentations": 1e3}`,
		`{"name": "\u0000"}`,
		`{"name": "\ud800"}`,
		`{}`, `[]`, `null`, `{"a":`, "\xff",
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, update bool) {
		method, path := "POST", "/api/conferences/"
		if update {
			method, path = "PUT", existing.Href
		}
		before := fx.counts(t)
		r := fx.doRaw(t, method, path, string(body), "application/json")
		if r.status >= 500 {
			t.Fatalf("%s %q: status %d: %s", method, body, r.status, r.body)
		}
		after := fx.counts(t)
		if r.status >= 400 {
			if before != after {
				t.Fatalf("%s %q answered %d but wrote: %v -> %v", method, body, r.status, before, after)
			}
			checkProblem(t, r, r.status)
			return
		}
		// A success writes one outbox row and moves the marker and the versions by one — or,
		// for an update that changes nothing, writes nothing at all.
		changes := after[1] - before[1]
		if changes != 1 && !(update && changes == 0) {
			t.Fatalf("%s %q answered %d with %d outbox rows", method, body, r.status, changes)
		}
		if after[3]-before[3] != changes || (update && after[2]-before[2] != changes) {
			t.Fatalf("%s %q answered %d: counts %v -> %v do not move with the outbox", method, body, r.status, before, after)
		}
		if want := map[bool]int{false: 201, true: 200}[update]; r.status != want {
			t.Fatalf("%s answered %d, want %d", method, r.status, want)
		}
	})
}
