// Package synctest plays both ends of the sync contract in memory, over real HTTP: a source
// that serves a change feed and a state listing, and a copy that applies hand-overs with the
// version guard and repairs. It is the protocol the syncer speaks, for unit tests of the
// syncer's loops; the end-to-end tests run the real services.
package synctest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"conferencego/syncer/changeevent"
)

// Source is an in-memory api-conference.
type Source struct {
	mu    sync.Mutex
	ID    string
	state map[int64]changeevent.Change
	// seq orders changes like a commit order; feed holds (seq → id) of each id's newest change.
	seq  int64
	last map[int64]int64
	// Truncate, when set, makes the state listing end after its first page (a proxy's bug).
	Truncate bool
	// Gone makes the feed answer 410 to every cursor older than it.
	Gone     int64
	Requests int
}

// NewSource returns a source with identity id, served by an httptest server closed with t.
func NewSource(t *testing.T, id string) (*Source, string) {
	t.Helper()
	s := &Source{ID: id, state: map[int64]changeevent.Change{}, last: map[int64]int64{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

// Set makes conference id live at version.
func (s *Source) Set(id, version int64) {
	data, _ := changeevent.MarshalData(changeevent.Conference{ID: id, Href: changeevent.Href(id), Name: fmt.Sprint("C", id),
		Starts: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), Ends: time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)})
	s.put(changeevent.Change{EventID: changeevent.SourceEventID(id, version), Type: changeevent.TypeFor(version, false),
		ConferenceID: id, Version: version, OccurredAt: time.Now().UTC(), Data: data})
}

// Delete tombstones conference id at version.
func (s *Source) Delete(id, version int64) {
	s.put(changeevent.Change{EventID: changeevent.SourceEventID(id, version), Type: changeevent.Deleted,
		ConferenceID: id, Version: version, OccurredAt: time.Now().UTC()})
}

func (s *Source) put(c changeevent.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.state[c.ConferenceID] = c
	s.last[c.ConferenceID] = s.seq
}

// Versions returns every conference's version, tombstones negative.
func (s *Source) Versions() map[int64]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int64]int64{}
	for id, c := range s.state {
		out[id] = signed(c.Version, c.Type == changeevent.Deleted)
	}
	return out
}

func signed(v int64, deleted bool) int64 {
	if deleted {
		return -v
	}
	return v
}

func (s *Source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Requests++
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get(changeevent.ParamLimit))
	if limit == 0 {
		limit = changeevent.MaxPage
	}
	cursor := strconv.FormatInt(s.seq, 10)
	switch r.URL.Path {
	case changeevent.PathFeed:
		after, _ := strconv.ParseInt(q.Get(changeevent.ParamAfter), 10, 64)
		if after < s.Gone {
			http.Error(w, `{"detail":"gone"}`, http.StatusGone)
			return
		}
		type item struct{ seq, id int64 }
		var items []item
		for id, seq := range s.last {
			if seq > after {
				items = append(items, item{seq, id})
			}
		}
		slices.SortFunc(items, func(a, b item) int { return int(a.seq - b.seq) })
		page := changeevent.FeedPage{Source: s.ID, Changes: []changeevent.Change{}, Next: strconv.FormatInt(max(after, 0), 10)}
		for i, it := range items {
			if i == limit {
				page.More = true
				break
			}
			page.Changes = append(page.Changes, s.state[it.id])
			page.Next = strconv.FormatInt(it.seq, 10)
		}
		writeJSON(w, page)
	case changeevent.PathState:
		page := changeevent.StatePage{Source: s.ID, Cursor: cursor, Conferences: []changeevent.Change{}}
		if ids := q.Get(changeevent.ParamIDs); ids != "" {
			for _, part := range strings.Split(ids, ",") {
				id, _ := strconv.ParseInt(part, 10, 64)
				if c, ok := s.state[id]; ok {
					page.Conferences = append(page.Conferences, c)
				} else {
					page.Unknown = append(page.Unknown, id)
				}
			}
			writeJSON(w, page)
			return
		}
		after, _ := strconv.ParseInt(q.Get(changeevent.ParamAfter), 10, 64)
		var ids []int64
		for id := range s.state {
			if id > after {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		for i, id := range ids {
			if i == limit {
				if !s.Truncate {
					next := fmt.Sprintf("%s?after=%d&limit=%d", changeevent.PathState, ids[i-1], limit)
					page.Next = &next
				}
				break
			}
			page.Conferences = append(page.Conferences, s.state[id])
		}
		writeJSON(w, page)
	default:
		http.NotFound(w, r)
	}
}

// Attendee is an in-memory api-attendee: the version guard, the binding and repairs.
type Attendee struct {
	mu     sync.Mutex
	source string
	rows   map[int64]changeevent.ConferenceVO
}

// NewAttendee returns an empty copy served by an httptest server closed with t.
func NewAttendee(t *testing.T) (*Attendee, string) {
	t.Helper()
	c := &Attendee{rows: map[int64]changeevent.ConferenceVO{}}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, srv.URL
}

// Force stores a row as a fault would, past the guard.
func (c *Attendee) Force(id, version int64, deleted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows[id] = changeevent.ConferenceVO{ID: id, Version: version, Deleted: deleted}
}

// Bind binds the copy to source.
func (c *Attendee) Bind(source string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.source = source
}

// Versions returns every row's version, tombstones negative (a version-0 tombstone is 0).
func (c *Attendee) Versions() map[int64]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[int64]int64{}
	for id, r := range c.rows {
		out[id] = signed(r.Version, r.Deleted)
	}
	return out
}

func (c *Attendee) apply(ch changeevent.Change) bool {
	r, ok := c.rows[ch.ConferenceID]
	if ok && r.Version >= ch.Version {
		return false
	}
	c.rows[ch.ConferenceID] = changeevent.ConferenceVO{ID: ch.ConferenceID, Version: ch.Version, Deleted: ch.Type == changeevent.Deleted}
	return true
}

func (c *Attendee) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	bind := func(source string) bool {
		if c.source != "" && c.source != source {
			http.Error(w, `{"detail":"bound to another source"}`, http.StatusConflict)
			return false
		}
		c.source = source
		return true
	}
	switch r.Method + " " + r.URL.Path {
	case "GET " + changeevent.PathSource:
		writeJSON(w, changeevent.SourceBinding{Source: c.source})
	case "POST " + changeevent.PathHandover:
		var req changeevent.Handover
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !bind(req.Source) {
			return
		}
		out := changeevent.HandoverResult{Changes: len(req.Changes)}
		for _, ch := range req.Changes {
			if c.apply(ch) {
				out.Applied++
			}
		}
		writeJSON(w, out)
	case "POST " + changeevent.PathRepairs:
		var req changeevent.RepairRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !bind(req.Source) {
			return
		}
		out := changeevent.HandoverResult{Changes: len(req.Repairs)}
		for _, rp := range req.Repairs {
			row, ok := c.rows[rp.ConferenceID]
			if !ok || row.Version != rp.Replaces {
				continue
			}
			if rp.Change == nil {
				row.Version, row.Deleted = 0, true
			} else {
				row.Version, row.Deleted = rp.Change.Version, rp.Change.Type == changeevent.Deleted
			}
			c.rows[rp.ConferenceID] = row
			out.Applied++
		}
		writeJSON(w, out)
	case "GET " + changeevent.PathConferenceVOs:
		after, _ := strconv.ParseInt(r.URL.Query().Get(changeevent.ParamAfter), 10, 64)
		limit, _ := strconv.Atoi(r.URL.Query().Get(changeevent.ParamLimit))
		var ids []int64
		for id := range c.rows {
			if id > after {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		page := changeevent.ConferenceVOPage{Source: c.source, Conferences: []changeevent.ConferenceVO{}}
		for i, id := range ids {
			if i == limit {
				next := fmt.Sprintf("%s?after=%d&limit=%d", changeevent.PathConferenceVOs, ids[i-1], limit)
				page.Next = &next
				break
			}
			page.Conferences = append(page.Conferences, c.rows[id])
		}
		writeJSON(w, page)
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
