package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// Without ?limit= a list holds every item, as the original's pages expect (they never follow
// next); past one page of the store the body is streamed, and must still be one whole, valid
// document with each item once, in id order. With ?limit= it pages.
func TestListsWithoutLimitHoldEveryItem(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const n = 1234 // more than two of the stream's pages
	for id := int64(1); id <= 3; id++ {
		f.mustConference(t, id, 10_000)
	}
	ctx := context.Background()
	if _, err := f.db.ExecContext(ctx, `INSERT INTO attendees (conference_id, email, name)
		SELECT 1 + i % 2, 'person' || i || '@example.com', 'Person ' || i FROM generate_series(1, ?) i`, n); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.ExecContext(ctx, `INSERT INTO conference_vos (conference_id, import_href, name, starts, ends, max_attendees, version, occurred_at)
		SELECT 100 + i, '/api/conferences/' || (100 + i) || '/', 'Imported ' || i, '2027-01-01', '2027-01-02', 10, 1, now()
		FROM generate_series(1, ?) i`, n); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, name string
		want       int
	}{
		{"/api/attendees/", "attendees", n},
		{"/api/conferences/1/attendees/", "attendees", n / 2},
		{"/api/conferences/", "conferences", n + 3},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := f.must(t, 200, "GET", tc.path, nil, nil)
			var body map[string]json.RawMessage
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatalf("the streamed list is not one JSON document: %v", err)
			}
			if string(body["next"]) != "null" {
				t.Errorf("next = %s, want null", body["next"])
			}
			var items []map[string]any
			if err := json.Unmarshal(body[tc.name], &items); err != nil {
				t.Fatal(err)
			}
			if len(items) != tc.want {
				t.Fatalf("%d %s, want %d", len(items), tc.name, tc.want)
			}
			seen := map[string]bool{}
			for _, it := range items {
				key := fmt.Sprint(it["href"], it["id"])
				if seen[key] {
					t.Fatalf("%s listed twice", key)
				}
				seen[key] = true
			}
			var page map[string]json.RawMessage
			f.must(t, 200, "GET", tc.path+"?limit=100", nil, &page)
			var next string
			if err := json.Unmarshal(page["next"], &next); err != nil || !strings.HasPrefix(next, tc.path+"?limit=100&after=") {
				t.Errorf("first page's next = %s", page["next"])
			}
			var second map[string]json.RawMessage
			f.must(t, 200, "GET", next, nil, &second)
			var items2 []map[string]any
			if err := json.Unmarshal(second[tc.name], &items2); err != nil || len(items2) != 100 {
				t.Errorf("second page: %d items, %v", len(items2), err)
			}
		})
	}
	// An unknown conference is still 404, and a bad parameter 400 naming it.
	f.must(t, 404, "GET", "/api/conferences/99999999/attendees/", nil, nil)
	f.must(t, 400, "GET", "/api/attendees/?limit=0", nil, nil)
	f.must(t, 400, "GET", "/api/attendees/?after=x", nil, nil)
}
