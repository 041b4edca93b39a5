package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"conferencego/api-conference/internal/postgres/pgtest"
	"conferencego/syncer/changeevent"
)

// BenchmarkNotModified is what an idle poller costs the source: a conditional GET of the
// conference list that answers 304. It must not grow with the number of conferences.
//
//	go test -run '^$' -bench NotModified ./internal/server
func BenchmarkNotModified(b *testing.B) {
	for _, n := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("conferences=%d", n), func(b *testing.B) {
			f := setup(b)
			loc := pgtest.MustCreateLocation(b, f.store)
			// Straight into the table: the benchmark is about reading, not about how they got there.
			if _, err := f.db.ExecContext(context.Background(), `INSERT INTO conferences
				(name, starts, ends, max_presentations, max_attendees, location_id)
				SELECT 'Conference ' || i, '2027-03-01', '2027-03-02', 1, 100, ? FROM generate_series(1, ?) AS i`, loc.ID, n); err != nil {
				b.Fatal(err)
			}
			etag := f.must(b, 200, "GET", "/api/conferences/", nil, nil).header.Get("ETag")
			req, err := http.NewRequest("GET", f.base+"/api/conferences/", nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("If-None-Match", etag)
			b.ResetTimer()
			for b.Loop() {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotModified {
					b.Fatalf("status %d, want 304", resp.StatusCode)
				}
			}
		})
	}
}

// BenchmarkFullList is the other side of the same poll: the first page (100 conferences) when
// something changed.
func BenchmarkFullList(b *testing.B) {
	f := setup(b)
	loc := pgtest.MustCreateLocation(b, f.store)
	if _, err := f.db.ExecContext(context.Background(), `INSERT INTO conferences
		(name, starts, ends, max_presentations, max_attendees, location_id)
		SELECT 'Conference ' || i, '2027-03-01', '2027-03-02', 1, 100, ? FROM generate_series(1, 10000) AS i`, loc.ID); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		f.must(b, 200, "GET", "/api/conferences/", nil, nil)
	}
}

// BenchmarkIdleFeed is what an idle pull-mode poller costs the source: a poll of the change
// feed from the cursor the last poll returned, with nothing new. It must not grow with the
// number of conferences: the index range after the cursor is empty and the join never runs.
//
//	go test -run '^$' -bench IdleFeed ./internal/server
func BenchmarkIdleFeed(b *testing.B) {
	for _, n := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("conferences=%d", n), func(b *testing.B) {
			f := setup(b)
			loc := pgtest.MustCreateLocation(b, f.store)
			if _, err := f.db.ExecContext(context.Background(), `INSERT INTO conferences
				(name, starts, ends, max_presentations, max_attendees, location_id)
				SELECT 'Conference ' || i, '2027-03-01', '2027-03-02', 1, 100, ? FROM generate_series(1, ?) AS i`, loc.ID, n); err != nil {
				b.Fatal(err)
			}
			cursor := ""
			for {
				var page changeevent.FeedPage
				f.must(b, 200, "GET", changeevent.PathFeed+"?after="+cursor, nil, &page)
				cursor = page.Next
				if !page.More && len(page.Changes) == 0 {
					break
				}
			}
			b.ResetTimer()
			for b.Loop() {
				resp, err := http.Get(f.base + changeevent.PathFeed + "?after=" + cursor)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}

// BenchmarkListPage is the list of 100 as `task bench` loads it, from 16 clients at once, the
// answer read and dropped: what the server spends on it, with none of the test's checking.
//
//	go test -run '^$' -bench ListPage -cpuprofile cpu.out ./internal/server
func BenchmarkListPage(b *testing.B) {
	f := setup(b)
	loc := pgtest.MustCreateLocation(b, f.store)
	if _, err := f.db.ExecContext(context.Background(), `INSERT INTO conferences
		(name, starts, ends, max_presentations, max_attendees, location_id)
		SELECT 'Conference ' || i, '2027-03-01', '2027-03-02', 1, 100, ? FROM generate_series(1, 1000) AS i`, loc.ID); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	b.SetParallelism(8) // 16 clients on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(f.base + "/api/conferences/?limit=100")
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
