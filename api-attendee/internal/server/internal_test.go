package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/api-attendee/internal/postgres/pgtest"
	"conferencego/api-attendee/internal/server"
	"conferencego/syncer/changeevent"
)

func batchOf(events ...changeevent.Event) attendee.Batch { return pgtest.Batch(events...) }

var bearer = []string{"Authorization", "Bearer " + testToken}

// changeObject is a change as the internal endpoint documents it.
func changeObject(e changeevent.Event) map[string]any {
	m := map[string]any{
		"event_id": e.ID, "type": string(e.Type), "conference_id": e.ConferenceID, "version": e.Version,
		"occurred_at": e.OccurredAt.Format(time.RFC3339Nano), "data": nil,
	}
	if e.Data != nil {
		m["data"] = e.Data
	}
	return m
}

func changesBody(events ...changeevent.Event) map[string]any {
	list := make([]map[string]any, len(events))
	for i, e := range events {
		list[i] = changeObject(e)
	}
	return map[string]any{"source": testSource, "changes": list}
}

// testSource is the source every hand-over of these tests comes from.
const testSource = "source-of-the-tests"

type applyResult = changeevent.HandoverResult

func (f fixture) live(tb testing.TB) map[int64]int64 {
	tb.Helper()
	confs, err := f.store.ListConferenceVOsWithTombstones(context.Background(), 0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[int64]int64{}
	for _, c := range confs {
		if !c.Deleted {
			out[c.ID] = c.Version
		}
	}
	return out
}

func TestInternalChanges(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c, d := pgtest.Created, pgtest.Deleted
	var res applyResult
	f.must(t, 200, "POST", "/internal/changes", changesBody(c(1, 2, "A2", 5), c(1, 1, "A1", 5), c(2, 1, "B", 5), d(3, 4)), &res, bearer...)
	if diff := cmp.Diff(applyResult{Changes: 3, Applied: 3}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	f.must(t, 200, "POST", "/internal/changes/", changesBody(c(1, 1, "A1", 5), c(3, 2, "C", 5)), &res, bearer...)
	if diff := cmp.Diff(applyResult{Changes: 2, Applied: 0}, res); diff != "" {
		t.Errorf("stale changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[int64]int64{1: 2, 2: 1}, f.live(t)); diff != "" {
		t.Errorf("live conferences (-want +got):\n%s", diff)
	}
	f.must(t, 200, "POST", "/internal/changes", `{"source": "`+testSource+`", "changes": []}`, &res, bearer...)
	// Three changes were applied, and each one's lag observed.
	if m := f.must(t, 200, "GET", "/metrics", nil, nil); !strings.Contains(string(m.body), "attendee_internal_lag_seconds_count 3") {
		t.Errorf("metrics lack the lag of the three applied changes")
	}
}

func TestInternalSourceAndRepairs(t *testing.T) {
	t.Parallel()
	c := pgtest.Created
	t.Run("the first source binds the copy; another is refused until the binding is removed", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.must(t, 200, "POST", "/internal/changes", changesBody(c(1, 1, "A", 5)), nil, bearer...)
		var binding changeevent.SourceBinding
		f.must(t, 200, "GET", "/internal/source", nil, &binding, bearer...)
		if binding.Source != testSource || binding.BoundAt == nil {
			t.Errorf("binding %+v, want %s", binding, testSource)
		}
		other := changesBody(c(1, 2, "From elsewhere", 5))
		other["source"] = "another-database"
		p := checkProblem(t, f.do(t, "POST", "/internal/changes", other, bearer...), 409)
		if !strings.Contains(p.Detail, testSource) || !strings.Contains(p.Detail, "another-database") {
			t.Errorf("detail %q does not name both sources", p.Detail)
		}
		if diff := cmp.Diff(map[int64]int64{1: 1}, f.live(t)); diff != "" {
			t.Errorf("a refused hand-over changed the copy (-want +got):\n%s", diff)
		}
		f.must(t, 200, "DELETE", "/internal/source", nil, &binding, bearer...)
		f.must(t, 200, "POST", "/internal/changes", other, nil, bearer...)
		if diff := cmp.Diff(map[int64]int64{1: 2}, f.live(t)); diff != "" {
			t.Errorf("after unbinding (-want +got):\n%s", diff)
		}
	})
	t.Run("repairs let the source win over a copy that is ahead", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.must(t, 200, "POST", "/internal/changes", changesBody(c(1, 1, "A", 5), pgtest.Deleted(2, 1<<62), c(3, 7, "Unknown", 5)), nil, bearer...)
		live := changeObject(c(2, 4, "Live", 5))
		var res applyResult
		f.must(t, 200, "POST", "/internal/repairs", map[string]any{"source": testSource, "repairs": []any{
			map[string]any{"conference_id": 2, "replaces": int64(1 << 62), "change": live},
			map[string]any{"conference_id": 3, "replaces": 7, "change": nil},
		}}, &res, bearer...)
		if res.Applied != 2 {
			t.Errorf("repaired %d, want 2", res.Applied)
		}
		if diff := cmp.Diff(map[int64]int64{1: 1, 2: 4}, f.live(t)); diff != "" {
			t.Errorf("live conferences after repairs (-want +got):\n%s", diff)
		}
	})
	t.Run("a payload field this side does not know is applied", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		body := changesBody(c(1, 1, "A", 5))
		ch := body["changes"].([]map[string]any)[0]
		data := map[string]any{}
		_ = json.Unmarshal([]byte(mustJSON(t, ch["data"])), &data)
		data["timezone"] = "America/Chicago"
		ch["data"] = data
		f.must(t, 200, "POST", "/internal/changes", body, nil, bearer...)
		if diff := cmp.Diff(map[int64]int64{1: 1}, f.live(t)); diff != "" {
			t.Errorf("live conferences (-want +got):\n%s", diff)
		}
	})
	t.Run("the copy in pages", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		var events []changeevent.Event
		for id := int64(1); id <= 25; id++ {
			events = append(events, c(id, 1, "P", 5))
		}
		events = append(events, pgtest.Deleted(26, 2))
		f.must(t, 200, "POST", "/internal/changes", changesBody(events...), nil, bearer...)
		var ids []int64
		next := "/internal/conferences?limit=10"
		for pages := 0; next != ""; pages++ {
			var page changeevent.ConferenceVOPage
			f.must(t, 200, "GET", next, nil, &page, bearer...)
			if page.Source != testSource || pages > 5 {
				t.Fatalf("page %d: %+v", pages, page)
			}
			for _, cp := range page.Conferences {
				ids = append(ids, cp.ID)
			}
			next = ""
			if page.Next != nil {
				next = *page.Next
			}
		}
		if len(ids) != 26 || ids[0] != 1 || ids[25] != 26 {
			t.Errorf("ids over the pages: %v, want 1…26 once each", ids)
		}
		runBadInputs(t, f, []badInput{
			{name: "limit 0", method: "GET", path: "/internal/conferences?limit=0", headers: bearer, want: 400, field: "limit"},
			{name: "limit too big", method: "GET", path: "/internal/conferences?limit=1001", headers: bearer, want: 400, field: "limit"},
			{name: "after not a number", method: "GET", path: "/internal/conferences?after=x", headers: bearer, want: 400, field: "after"},
			{name: "after negative", method: "GET", path: "/internal/conferences?after=-1", headers: bearer, want: 400, field: "after"},
		})
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInternalEndpointNeedsTheToken(t *testing.T) {
	t.Parallel()
	good := mustJSON(t, changesBody(pgtest.Created(1, 1, "A", 5)))
	snap := mustJSON(t, map[string]any{"source": testSource, "repairs": []any{map[string]any{"conference_id": 1, "replaces": 1, "change": nil}}})
	refused := func(f fixture, headers ...[]string) []badInput {
		var cases []badInput
		for _, route := range []struct{ path, body string }{{"/internal/changes", good}, {"/internal/repairs", snap}} {
			for i, h := range headers {
				cases = append(cases, badInput{name: fmt.Sprintf("credentials %d %v", i, h), method: "POST", path: route.path, body: route.body, headers: h, want: 401})
			}
		}
		return cases
	}

	t.Run("without or with a wrong token", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		runBadInputs(t, f, refused(f,
			nil,
			[]string{"Authorization", "Bearer wrong-token"},
			[]string{"Authorization", "Bearer " + testToken + "x"},
			[]string{"Authorization", "Bearer " + testToken[:10]},
			[]string{"Authorization", "Basic " + testToken},
			[]string{"Authorization", testToken},
			[]string{"Authorization", "Bearer"},
			[]string{"Authorization", "Bearer "},
		))
		r := f.doRaw(t, "POST", "/internal/changes", good, "application/json")
		if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("WWW-Authenticate = %q", got)
		}
		// 401 comes before anything is read of the request.
		checkProblem(t, f.doRaw(t, "POST", "/internal/changes", "not json", "text/plain"), 401)
	})
	t.Run("off without SYNC_TOKEN", func(t *testing.T) {
		t.Parallel()
		f := setupWith(t, server.Options{})
		runBadInputs(t, f, refused(f,
			nil,
			[]string{"Authorization", "Bearer "},
			[]string{"Authorization", "Bearer " + testToken},
		))
		p := checkProblem(t, f.doRaw(t, "POST", "/internal/changes", good, "application/json"), 401)
		if !strings.Contains(p.Detail, "SYNC_TOKEN") {
			t.Errorf("detail %q does not say the endpoint is off", p.Detail)
		}
	})
}

func TestInternalWritesRefuseBadInput(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.must(t, 200, "POST", "/internal/changes", changesBody(pgtest.Created(1, 1, "A", 5)), nil, bearer...)
	valid := func(mod func(m map[string]any)) string {
		m := changeObject(pgtest.Created(2, 1, "B", 5))
		mod(m)
		return mustJSON(t, map[string]any{"source": testSource, "changes": []any{changeObject(pgtest.Created(1, 2, "A2", 5)), m}})
	}
	data := func(mod func(d map[string]any)) func(m map[string]any) {
		return func(m map[string]any) {
			var d map[string]any
			_ = json.Unmarshal([]byte(mustJSON(t, m["data"])), &d)
			mod(d)
			m["data"] = d
		}
	}
	var cases []badInput
	for _, path := range []string{"/internal/changes", "/internal/repairs"} {
		for _, h := range hostileBodies("POST", path, bearer...) {
			if h.want == 413 {
				h.want = 400 // within InternalBodyLimit, so refused for its content
			}
			cases = append(cases, h)
		}
	}
	for _, tc := range []struct {
		name  string
		body  string
		field string
	}{
		{"unknown top-level field", `{"changes": [], "extra": 1}`, ""},
		{"changes not a list", `{"changes": {}}`, ""},
		{"missing event id", valid(func(m map[string]any) { delete(m, "event_id") }), "changes[1]"},
		{"unknown type", valid(func(m map[string]any) { m["type"] = "conference.renamed" }), "changes[1]"},
		{"id as a string", valid(func(m map[string]any) { m["conference_id"] = "2" }), ""},
		{"zero version", valid(func(m map[string]any) { m["version"] = 0 }), "changes[1]"},
		{"fractional version", valid(func(m map[string]any) { m["version"] = 1.5 }), ""},
		{"huge version", valid(func(m map[string]any) { m["version"] = 1e30 }), ""},
		{"bad time", valid(func(m map[string]any) { m["occurred_at"] = "yesterday" }), ""},
		{"missing time", valid(func(m map[string]any) { delete(m, "occurred_at") }), "changes[1]"},
		{"update without data", valid(func(m map[string]any) { m["data"] = nil }), "changes[1]"},
		{"delete with data", valid(func(m map[string]any) { m["type"] = "conference.deleted" }), "changes[1]"},
		{"data of another conference", valid(data(func(d map[string]any) { d["id"] = 9 })), "changes[1]"},
		{"NUL in name", valid(data(func(d map[string]any) { d["name"] = "B\x00" })), "changes[1]"},
		{"NUL in event id", valid(func(m map[string]any) { m["event_id"] = "e\x00" }), "changes[1].event_id"},
		{"NUL in href", valid(data(func(d map[string]any) { d["href"] = "/api/conferences/2/\x00" })), "changes[1]"},
		{"over-long name", valid(data(func(d map[string]any) { d["name"] = strings.Repeat("n", 10001) })), "changes[1]"},
		{"negative max_attendees", valid(data(func(d map[string]any) { d["max_attendees"] = -1 })), "changes[1]"},
		{"max_attendees beyond int32", valid(data(func(d map[string]any) { d["max_attendees"] = 1 << 40 })), "changes[1]"},
		{"year 0", valid(data(func(d map[string]any) { d["starts"] = "0000-01-01T00:00:00Z" })), "changes[1]"},
	} {
		cases = append(cases, badInput{name: tc.name, method: "POST", path: "/internal/changes", body: tc.body, headers: bearer, want: 400, field: tc.field})
	}
	repair := func(r string) string { return `{"source": "` + testSource + `", "repairs": [` + r + `]}` }
	for _, tc := range []struct{ name, path, body, field string }{
		{"no source", "/internal/changes", `{"changes": []}`, "source"},
		{"empty source", "/internal/changes", `{"source": "", "changes": []}`, "source"},
		{"source with a space", "/internal/changes", `{"source": "a b", "changes": []}`, "source"},
		{"source too long", "/internal/changes", `{"source": "` + strings.Repeat("s", 65) + `", "changes": []}`, "source"},
		{"trailing word", "/internal/changes", `{"source": "s", "changes": []} trailing`, ""},
		{"trailing bracket", "/internal/changes", `{"source": "s", "changes": []}]`, ""},
		{"trailing braces", "/internal/changes", `{"source": "s", "changes": []}}}}`, ""},
		{"repairs without source", "/internal/repairs", `{"repairs": []}`, "source"},
		{"repairs not a list", "/internal/repairs", `{"source": "s", "repairs": {}}`, ""},
		{"repair of id 0", "/internal/repairs", repair(`{"conference_id": 0, "replaces": 1, "change": null}`), "repairs[0]"},
		{"repair replacing -1", "/internal/repairs", repair(`{"conference_id": 1, "replaces": -1, "change": null}`), "repairs[0]"},
		{"repair twice", "/internal/repairs", repair(`{"conference_id": 1, "replaces": 1, "change": null}, {"conference_id": 1, "replaces": 1, "change": null}`), "repairs[1]"},
		{"repair with another conference's change", "/internal/repairs", repair(`{"conference_id": 1, "replaces": 1, "change": ` + mustJSON(t, changeObject(pgtest.Created(2, 1, "B", 5))) + `}`), "repairs[0]"},
		{"repair with a malformed change", "/internal/repairs", repair(`{"conference_id": 1, "replaces": 1, "change": {"type": "conference.moved"}}`), "repairs[0]"},
		{"repair trailing garbage", "/internal/repairs", repair(``) + ` x`, ""},
	} {
		cases = append(cases, badInput{name: tc.name, method: "POST", path: tc.path, body: tc.body, headers: bearer, want: 400, field: tc.field})
	}
	runBadInputs(t, f, cases)
	// A hand-over may be far larger than a public request, but not without bound.
	checkProblem(t, f.doOversized(t, "POST", "/internal/changes", server.InternalBodyLimit+1, bearer...), 413)
}

func TestInternalConferencesShowsTombstonesAndLag(t *testing.T) {
	t.Parallel()
	f := setup(t)
	c, d := pgtest.Created, pgtest.Deleted
	f.must(t, 200, "POST", "/internal/changes", changesBody(c(1, 1, "A", 5), c(2, 1, "B", 5), d(3, 2)), nil, bearer...)
	f.must(t, 200, "POST", "/internal/changes", changesBody(d(2, 2)), nil, bearer...)
	checkProblem(t, f.do(t, "GET", "/internal/conferences/", nil), 401)

	var got struct {
		Conferences []struct {
			ID         int64      `json:"id"`
			Name       string     `json:"name"`
			Starts     *time.Time `json:"starts"`
			Version    int64      `json:"version"`
			Deleted    bool       `json:"deleted"`
			OccurredAt time.Time  `json:"occurred_at"`
			AppliedAt  time.Time  `json:"applied_at"`
		} `json:"conferences"`
	}
	f.must(t, 200, "GET", "/internal/conferences/", nil, &got, bearer...)
	type row struct {
		ID          int64
		Name        string
		Version     int64
		Deleted     bool
		StartsKnown bool
	}
	var rows []row
	for _, cf := range got.Conferences {
		rows = append(rows, row{cf.ID, cf.Name, cf.Version, cf.Deleted, cf.Starts != nil})
		if cf.OccurredAt.IsZero() || cf.AppliedAt.Before(cf.OccurredAt.Add(-time.Minute)) {
			t.Errorf("conference %d: occurred_at %v, applied_at %v", cf.ID, cf.OccurredAt, cf.AppliedAt)
		}
	}
	want := []row{{1, "A", 1, false, true}, {2, "B", 2, true, true}, {3, "", 2, true, false}}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("copies (-want +got):\n%s", diff)
	}
}
