package poller

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// source plays api-conference's conference list: keyset pages, an ETag from a change counter,
// and failures on demand. It is the protocol the poller speaks, not a stand-in for a database.
type source struct {
	mu       sync.Mutex
	items    map[int64]listItem
	marker   int
	failPage int // 1-based page that answers 500; 0 for none
	loop     bool
	requests int
}

func (s *source) set(id, version int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[id] = listItem{ID: id, Href: fmt.Sprintf("/api/conferences/%d/", id), Name: fmt.Sprint("C", id),
		Starts: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), Ends: time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC),
		Version: version, Updated: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	s.marker++
}

func (s *source) remove(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items, id)
	s.marker++
}

func (s *source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	etag := fmt.Sprintf(`"m%d-l%d-a%d"`, s.marker, limit, after)
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	ids := make([]int64, 0, len(s.items))
	for id := range s.items {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	page := listPage{Conferences: []listItem{}}
	// Which page this is, counting from 1: how many full pages lie at or below after.
	before := 0
	for id := range s.items {
		if id <= after {
			before++
		}
	}
	pageNo := 1 + before/limit
	if s.failPage == pageNo {
		http.Error(w, "boom", http.StatusInternalServerError)
		return
	}
	for _, id := range ids[:min(limit, len(ids))] {
		page.Conferences = append(page.Conferences, s.items[id])
	}
	if len(ids) > limit || s.loop {
		next := fmt.Sprintf("/api/conferences/?limit=%d&after=%d", limit, page.Conferences[len(page.Conferences)-1].ID)
		if s.loop {
			next = fmt.Sprintf("/api/conferences/?limit=%d&after=%d", limit, after)
		}
		page.Next = &next
	}
	_ = json.NewEncoder(w).Encode(page)
}

// sink records what the poller hands to api-attendee's internal endpoint.
type sink struct {
	mu    sync.Mutex
	calls []string // "changes:1v2,3v1" or "snapshot:…"
	fail  bool
}

func (k *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer secret" {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	if k.fail {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var body struct {
		Complete bool       `json:"complete"`
		TakenAt  *time.Time `json:"taken_at"`
		Changes  []changeJSON
	}
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	var parts []string
	for _, c := range body.Changes {
		parts = append(parts, fmt.Sprintf("%d%s%d", c.ConferenceID, map[string]string{"conference.created": "c", "conference.updated": "u", "conference.deleted": "d"}[c.Type], c.Version))
	}
	slices.Sort(parts)
	kind := r.URL.Path[len("/internal/"):]
	if kind == "snapshot" && (!body.Complete || body.TakenAt == nil) {
		http.Error(w, "incomplete snapshot", 400)
		return
	}
	k.calls = append(k.calls, fmt.Sprintf("%s:%v", kind, parts))
	_ = json.NewEncoder(w).Encode(applyResult{Changes: len(parts), Applied: len(parts)})
}

func (k *sink) take() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := k.calls
	k.calls = nil
	return out
}

func setup(t *testing.T, pageSize int) (*Poller, *source, *sink) {
	t.Helper()
	src := &source{items: map[int64]listItem{}}
	dst := &sink{}
	s1, s2 := httptest.NewServer(src), httptest.NewServer(dst)
	t.Cleanup(s1.Close)
	t.Cleanup(s2.Close)
	p, err := New(slog.New(slog.NewTextHandler(io.Discard, nil)), Config{
		ConferenceURL: s1.URL, AttendeeURL: s2.URL, Token: "secret", Interval: time.Second, PageSize: pageSize,
		FollowUp: time.Hour, // TestFollowUpSnapshot sets its own
	}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return p, src, dst
}

func poll(t *testing.T, p *Poller) Result {
	t.Helper()
	r, err := p.runOnce(context.Background())
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	return r
}

func TestPollerHandsOverChangesAndDeletes(t *testing.T) {
	t.Parallel()
	p, src, dst := setup(t, 2)
	for id := int64(1); id <= 5; id++ {
		src.set(id, 1)
	}
	// The first poll knows nothing: the whole list, all three pages, as a snapshot.
	if r := poll(t, p); !r.Snapshot || r.Listed != 5 {
		t.Errorf("first poll: %+v", r)
	}
	if diff := cmp.Diff([]string{"snapshot:[1c1 2c1 3c1 4c1 5c1]"}, dst.take()); diff != "" {
		t.Errorf("first hand-off (-want +got):\n%s", diff)
	}
	// Nothing changed: one request, a 304, nothing handed over.
	before := src.requests
	if r := poll(t, p); !r.NotModified {
		t.Errorf("second poll: %+v", r)
	}
	if src.requests-before != 1 || len(dst.take()) != 0 {
		t.Errorf("an unchanged list cost %d requests and handed something over", src.requests-before)
	}
	// An update and a create: only those two.
	src.set(3, 2)
	src.set(6, 1)
	poll(t, p)
	if diff := cmp.Diff([]string{"changes:[3u2 6c1]"}, dst.take()); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	// A delete is an absence from a complete list: a delete change, one version on.
	src.remove(2)
	src.set(4, 2)
	poll(t, p)
	if diff := cmp.Diff([]string{"changes:[2d2 4u2]"}, dst.take()); diff != "" {
		t.Errorf("after a delete (-want +got):\n%s", diff)
	}
}

func TestFailedPageHandsOverNothing(t *testing.T) {
	t.Parallel()
	p, src, dst := setup(t, 2)
	for id := int64(1); id <= 5; id++ {
		src.set(id, 1)
	}
	poll(t, p)
	dst.take()
	src.remove(5) // on page 3
	src.set(1, 2) // on page 1
	src.failPage = 2
	if _, err := p.runOnce(context.Background()); err == nil {
		t.Fatal("a poll with a failed page succeeded")
	}
	if calls := dst.take(); len(calls) != 0 {
		t.Errorf("a partial list was handed over: %v", calls)
	}
	src.failPage = 0
	poll(t, p)
	if diff := cmp.Diff([]string{"changes:[1u2 5d2]"}, dst.take()); diff != "" {
		t.Errorf("after the source recovered (-want +got):\n%s", diff)
	}
}

func TestAttendeeFailureIsRetriedFromTheList(t *testing.T) {
	t.Parallel()
	p, src, dst := setup(t, 100)
	src.set(1, 1)
	poll(t, p)
	dst.take()
	src.set(1, 2)
	dst.fail = true
	if _, err := p.runOnce(context.Background()); err == nil {
		t.Fatal("poll succeeded with api-attendee failing")
	}
	dst.fail = false
	// The ETag was not advanced, so the next poll reads the list again instead of a 304.
	if r := poll(t, p); r.NotModified {
		t.Fatal("the change was lost: the retry got a 304")
	}
	if diff := cmp.Diff([]string{"changes:[1u2]"}, dst.take()); diff != "" {
		t.Errorf("retry (-want +got):\n%s", diff)
	}
}

func TestEverythingDeletedSendsDeletes(t *testing.T) {
	t.Parallel()
	p, src, dst := setup(t, 100)
	src.set(1, 1)
	src.set(2, 4)
	poll(t, p)
	dst.take()
	src.remove(1)
	src.remove(2)
	poll(t, p)
	if diff := cmp.Diff([]string{"changes:[1d2 2d5]"}, dst.take()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// The first snapshot after a start is followed by one more, whether or not the list changed:
// api-attendee spares conferences changed after a snapshot was taken, and the source's clock
// gives that time only to the second.
func TestFollowUpSnapshot(t *testing.T) {
	t.Parallel()
	p, src, dst := setup(t, 100)
	p.cfg.FollowUp = time.Millisecond
	src.set(1, 1)
	src.set(2, 1)
	poll(t, p)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(p.followUpAt) {
		if time.Now().After(deadline) {
			t.Fatal("follow-up never came due")
		}
		time.Sleep(time.Millisecond) // the follow-up is due by the clock, which is what is tested
	}
	if r := poll(t, p); !r.Snapshot {
		t.Errorf("second poll: %+v, want the follow-up snapshot", r)
	}
	if r := poll(t, p); !r.NotModified {
		t.Errorf("third poll: %+v, want a 304: only one follow-up", r)
	}
	if diff := cmp.Diff([]string{"snapshot:[1c1 2c1]", "snapshot:[1c1 2c1]"}, dst.take()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestNextLinkThatDoesNotAdvanceIsAnError(t *testing.T) {
	t.Parallel()
	p, src, dst := setup(t, 100)
	src.set(1, 1)
	src.loop = true
	if _, err := p.runOnce(context.Background()); err == nil {
		t.Fatal("a looping next link was followed without end or error")
	}
	if calls := dst.take(); len(calls) != 0 {
		t.Errorf("handed over %v", calls)
	}
}

func TestReconcileSendsTheWholeList(t *testing.T) {
	t.Parallel()
	p, src, dst := setup(t, 2)
	for id := int64(1); id <= 3; id++ {
		src.set(id, id)
	}
	for range 2 { // whatever the ETag, every time
		if err := p.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{"snapshot:[1c1 2u2 3u3]", "snapshot:[1c1 2u2 3u3]"}, dst.take()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRunBacksOffWhileTheSourceIsDown(t *testing.T) {
	t.Parallel()
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	t.Cleanup(src.Close)
	reg := prometheus.NewRegistry()
	p, err := New(slog.New(slog.NewTextHandler(io.Discard, nil)), Config{
		ConferenceURL: src.URL, AttendeeURL: src.URL, Token: "x", Interval: 20 * time.Millisecond,
	}, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// Without backoff 1.5 s of 20 ms intervals would be 75 polls; doubling from 20 ms it is
	// at most about 7.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "poller_errors_total" {
			if n := mf.GetMetric()[0].GetCounter().GetValue(); n < 2 || n > 12 {
				t.Errorf("%v failed polls in 1.5 s; want a few, spaced by a growing backoff", n)
			}
			return
		}
	}
	t.Error("no poller_errors_total metric")
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"no token":       {ConferenceURL: "http://a", AttendeeURL: "http://b"},
		"bad URL":        {ConferenceURL: "a:b", AttendeeURL: "http://b", Token: "t"},
		"tiny interval":  {ConferenceURL: "http://a", AttendeeURL: "http://b", Token: "t", Interval: time.Microsecond},
		"huge page size": {ConferenceURL: "http://a", AttendeeURL: "http://b", Token: "t", PageSize: 5000},
	} {
		cfg.setDefaults()
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
