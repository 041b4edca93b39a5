package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"conferencego/api-conference/internal/postgres/pgtest"
)

type page struct {
	Conferences []conf  `json:"conferences"`
	Next        *string `json:"next"`
}

func TestPaginationReturnsEachConferenceOnce(t *testing.T) {
	t.Parallel()
	f := setup(t)
	loc := pgtest.MustCreateLocation(t, f.store)
	const n = 250
	for i := range n {
		pgtest.MustCreateConference(t, f.store, loc.ID, fmt.Sprint("Conference ", i))
	}
	for _, tc := range []struct {
		first string
		pages int
	}{
		{"/api/conferences/", 1}, // without a limit, every conference, as the original
		{"/api/conferences/?limit=7", 36},
		{"/api/conferences/?limit=250", 1},
		{"/api/conferences/?limit=1000", 1},
	} {
		t.Run(tc.first, func(t *testing.T) {
			seen := map[int64]bool{}
			var last int64
			pages := 0
			for path := tc.first; ; pages++ {
				var p page
				r := f.must(t, 200, "GET", path, nil, &p)
				for _, c := range p.Conferences {
					if seen[c.ID] {
						t.Fatalf("conference %d returned twice", c.ID)
					}
					if c.ID <= last {
						t.Fatalf("conference %d after %d: not in id order", c.ID, last)
					}
					seen[c.ID], last = true, c.ID
				}
				if p.Next == nil {
					if link := r.header.Get("Link"); link != "" {
						t.Errorf("last page has a Link header %q", link)
					}
					pages++
					break
				}
				if link := r.header.Get("Link"); link != fmt.Sprintf("<%s>; rel=\"next\"", *p.Next) {
					t.Errorf("Link header %q does not match next %q", link, *p.Next)
				}
				path = *p.Next
			}
			if len(seen) != n {
				t.Errorf("%d conferences seen, want %d", len(seen), n)
			}
			if pages != tc.pages {
				t.Errorf("%d pages, want %d", pages, tc.pages)
			}
		})
	}
}

// Without ?limit= a list holds every item, as the original's pages expect (they never follow
// next); past one page of the store the body is streamed, and must still be one whole, valid
// document with each item once, in id order.
func TestListsWithoutLimitHoldEveryItem(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const n = 1234 // more than two of the stream's pages
	ctx := context.Background()
	if _, err := f.db.ExecContext(ctx, `INSERT INTO locations (name, city, room_count, state)
		SELECT 'Hall ' || i, 'Austin', 3, 'TX'
		FROM generate_series(1, ?) i`, n); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.ExecContext(ctx, `INSERT INTO conferences (name, starts, ends, max_presentations, max_attendees, location_id)
		SELECT 'Conference ' || i, '2027-01-01', '2027-01-02', 10, 100, (SELECT min(id) FROM locations)
		FROM generate_series(1, ?) i`, n); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"conferences", "locations"} {
		t.Run(name, func(t *testing.T) {
			path := "/api/" + name + "/"
			before := bytesServed(t, f, "/api/"+name)
			r := f.must(t, 200, "GET", path, nil, nil)
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			var body map[string]json.RawMessage
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatalf("the streamed list is not one JSON document: %v", err)
			}
			if string(body["next"]) != "null" {
				t.Errorf("next = %s, want null", body["next"])
			}
			var items []struct {
				ID int64 `json:"id"`
			}
			if err := json.Unmarshal(body[name], &items); err != nil {
				t.Fatal(err)
			}
			if len(items) != n {
				t.Fatalf("%d %s, want %d", len(items), name, n)
			}
			for i := 1; i < len(items); i++ {
				if items[i].ID <= items[i-1].ID {
					t.Fatalf("item %d has id %d after %d: not in id order, or twice", i, items[i].ID, items[i-1].ID)
				}
			}
			if got := bytesServed(t, f, "/api/"+name) - before; got != float64(len(r.body)) {
				t.Errorf("metrics counted %v bytes for a body of %d", got, len(r.body))
			}
			// With a limit, keyset pages as before.
			var p map[string]json.RawMessage
			f.must(t, 200, "GET", path+"?limit=1000", nil, &p)
			var next string
			if err := json.Unmarshal(p["next"], &next); err != nil || !strings.HasPrefix(next, path+"?limit=1000&after=") {
				t.Errorf("first page's next = %s", p["next"])
			}
		})
	}
}

// bytesServed reads the response bytes the metrics counted for GET route.
func bytesServed(t *testing.T, f fixture, route string) float64 {
	t.Helper()
	prefix := `http_response_body_bytes_total{method="GET",route="` + route + `"} `
	for _, line := range strings.Split(string(f.must(t, 200, "GET", "/metrics", nil, nil).body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	return 0
}

func TestPaginationRefusesBadParameters(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, q := range []string{"limit=0", "limit=1001", "limit=-3", "limit=abc", "after=-1", "after=x", "limit=1e2"} {
		p := checkProblem(t, f.do(t, "GET", "/api/conferences/?"+q, nil), 400)
		if len(p.Errors) == 0 {
			t.Errorf("?%s: problem names no field", q)
		}
	}
	var p page
	f.must(t, 200, "GET", "/api/conferences/?after=99999999", nil, &p)
	if len(p.Conferences) != 0 || p.Next != nil {
		t.Errorf("page past the end: %+v", p)
	}
}

func TestETag(t *testing.T) {
	t.Parallel()
	f := setup(t)
	loc := f.mustLocation(t)

	etag := func() string {
		t.Helper()
		r := f.must(t, 200, "GET", "/api/conferences/", nil, nil)
		e := r.header.Get("ETag")
		if e == "" {
			t.Fatal("no ETag")
		}
		return e
	}
	notModifiedAs := func(inm, e string) {
		t.Helper()
		r := f.do(t, "GET", "/api/conferences/", nil, "If-None-Match", inm)
		if r.status != http.StatusNotModified || len(r.body) != 0 {
			t.Errorf("If-None-Match %s: status %d, body %q; want 304 and no body", inm, r.status, r.body)
		}
		if r.header.Get("ETag") != e {
			t.Errorf("304 carries ETag %q, want %q", r.header.Get("ETag"), e)
		}
	}
	notModified := func(e string) { t.Helper(); notModifiedAs(e, e) }
	bytesServed := func() string {
		t.Helper()
		for _, line := range strings.Split(string(f.must(t, 200, "GET", "/metrics", nil, nil).body), "\n") {
			if strings.HasPrefix(line, `http_response_body_bytes_total{method="GET",route="/api/conferences"}`) {
				return line
			}
		}
		return ""
	}
	changed := func(old string, what string) string {
		t.Helper()
		r := f.do(t, "GET", "/api/conferences/", nil, "If-None-Match", old)
		if r.status != 200 {
			t.Fatalf("after %s: status %d with the old ETag, want 200", what, r.status)
		}
		e := r.header.Get("ETag")
		if e == old {
			t.Errorf("after %s the ETag is still %s", what, e)
		}
		return e
	}

	e0 := etag()
	served := bytesServed()
	notModified(e0)
	if after := bytesServed(); after != served {
		t.Errorf("a 304 counted bytes served: %q -> %q", served, after)
	}
	notModifiedAs("W/"+e0, e0)
	notModifiedAs(`"something-else", `+e0, e0)
	notModifiedAs("*", e0)
	// Another page of the same list is another representation.
	if r := f.do(t, "GET", "/api/conferences/?limit=5", nil, "If-None-Match", e0); r.status != 200 {
		t.Errorf("other page with this page's ETag: status %d", r.status)
	}

	c := f.mustConference(t, loc.ID, "GopherCon")
	e1 := changed(e0, "a create")
	notModified(e1)
	f.must(t, 200, "PUT", c.Href, map[string]any{"max_attendees": 5}, nil)
	e2 := changed(e1, "an update")
	// A location change that conferences publish moves the ETag; one they don't, doesn't.
	f.must(t, 200, "PUT", loc.Href, map[string]any{"room_count": 99}, nil)
	notModified(e2)
	f.must(t, 200, "PUT", loc.Href, map[string]any{"city": "Dallas"}, nil)
	e3 := changed(e2, "a location rename")
	// Presentations are not part of the list.
	f.must(t, 201, "POST", c.Href+"presentations/", map[string]any{"presenter_name": "Ada", "presenter_email": "ada@example.com", "title": "Go", "synopsis": ""}, nil)
	notModified(e3)
	// A refused write changes nothing.
	checkProblem(t, f.do(t, "PUT", c.Href, map[string]any{"max_attendees": -1}), 400)
	notModified(e3)
	f.must(t, 200, "DELETE", c.Href, nil, nil)
	changed(e3, "a delete")
}

// A poll that finds nothing new must not depend on the size of the list: the ETag comes from
// the change marker, and a 304 reads nothing else.
func TestNotModifiedReadsNoConference(t *testing.T) {
	t.Parallel()
	f := setup(t)
	loc := f.mustLocation(t)
	f.mustConference(t, loc.ID, "GopherCon")
	e := f.must(t, 200, "GET", "/api/conferences/", nil, nil).header.Get("ETag")
	// Lock every conference row against readers of the table's contents except by key-share;
	// a 304 must still answer at once because it never reads the rows.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "LOCK TABLE conferences IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	if r := f.do(t, "GET", "/api/conferences/", nil, "If-None-Match", e); r.status != http.StatusNotModified {
		t.Errorf("status %d, want 304", r.status)
	}
}
