package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"conferencego/syncer/changeevent"
)

// What task bench:scale reports: for one table size, what an idle poll, a poll after one change,
// the seed's whole-list poll and a full reconcile cost api-conference, in rows its database
// read, bytes it served, time, and each process's peak RSS. Numbers, not assertions.

// pgStatsFlush is how late Postgres 15 may publish a backend's table counters: a backend that
// goes idle less than a second after its last flush waits PGSTAT_IDLE_INTERVAL (10 s) before
// the next one. Waiting this long, with nothing else at work, is how a reading of
// pg_stat_user_tables can be trusted to hold everything a step read, and nothing of the next.
const pgStatsFlush = 11 * time.Second

// scaleStep is one measured step.
type scaleStep struct {
	rows  int64         // rows read of the tables that grow with the conferences (sequential and by index)
	locs  int64         // rows read of locations, a table of a few dozen rows: see conferenceReads
	bytes int64         // response bytes api-conference served
	took  time.Duration // wall time of the step, per poll for the polls
	rss   string        // peak RSS of the processes that did the work, so far
}

// conferenceReads is what the database has read from schema conference's tables so far: rows
// of the tables that grow with the conferences, and rows of locations apart. Each look-up of a
// conference joins its location, and for a table of a few dozen rows the planner often reads
// it whole rather than by index, so those rows say how many locations there are, not how
// syncing scales.
func conferenceReads(t *testing.T, s *system) (rows, locs int64) {
	t.Helper()
	if err := s.db.QueryRow(context.Background(), `SELECT
		coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)) FILTER (WHERE relname <> 'locations'), 0)::bigint,
		coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)) FILTER (WHERE relname = 'locations'), 0)::bigint
		FROM pg_stat_user_tables WHERE schemaname = 'conference'`).Scan(&rows, &locs); err != nil {
		t.Fatal(err)
	}
	return rows, locs
}

// servedBytes is what api-conference has sent in response bodies so far.
func servedBytes(t *testing.T, s *system) int64 {
	t.Helper()
	return int64(metricSum(t, s.conference.URL()+"/metrics", "http_response_body_bytes_total"))
}

// measured runs step between two settled readings of the database's counters and of the bytes
// served; divide is how many polls step made, to report one.
func measured(t *testing.T, s *system, divide int, step func()) scaleStep {
	t.Helper()
	time.Sleep(pgStatsFlush) // see pgStatsFlush: Postgres publishes counters late, on its own clock
	rows, locs := conferenceReads(t, s)
	bytes := servedBytes(t, s)
	start := time.Now()
	step()
	took := time.Since(start)
	bytesAfter := servedBytes(t, s)
	time.Sleep(pgStatsFlush)
	rowsAfter, locsAfter := conferenceReads(t, s)
	d := int64(divide)
	return scaleStep{rows: (rowsAfter - rows) / d, locs: (locsAfter - locs) / d, bytes: (bytesAfter - bytes) / d, took: took / time.Duration(divide)}
}

// peakRSS names each process's peak resident set so far, in MiB.
func peakRSS(t *testing.T, ps ...*proc) string {
	t.Helper()
	var parts []string
	for _, p := range ps {
		rss, err := p.PeakRSS()
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf("%s %d", p.name, rss>>20))
	}
	return strings.Join(parts, ", ")
}

var reportMu sync.Mutex

// report appends a row of bench:scale's table to the file E2E_SCALE_REPORT names, and logs it.
func report(t *testing.T, n int, mode, what string, st scaleStep) {
	t.Helper()
	row := fmt.Sprintf("| %d | %s | %s | %d | %d | %d | %.1f | %s |\n", n, mode, what, st.rows, st.locs, st.bytes, float64(st.took.Microseconds())/1000, st.rss)
	t.Log(strings.TrimSpace(row))
	path := os.Getenv("E2E_SCALE_REPORT")
	if path == "" {
		return
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(row); err != nil {
		t.Fatal(err)
	}
}

// measurePolls measures what a poll costs api-conference at this table size, made from this
// process as the syncer makes it: an idle feed poll, a feed poll after one change, and the
// seed's poll of the whole list. The syncer is stopped meanwhile, so that only these polls
// are counted, and started again after.
func measurePolls(t *testing.T, s *system, n int) {
	t.Helper()
	ctx := context.Background()
	s.syncers[0].Stop()
	defer s.syncers[0].Start()
	base := s.conference.URL()
	get := func(path string) []byte {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		return body
	}
	var state changeevent.StatePage
	if err := json.Unmarshal(get(changeevent.PathState+"?limit=1"), &state); err != nil {
		t.Fatal(err)
	}
	// The cursor a follower holds once it has read everything: an idle poll finds nothing.
	var feed changeevent.FeedPage
	for cursor := state.Cursor; ; cursor = feed.Next {
		if err := json.Unmarshal(get(changeevent.PathFeed+"?limit=1000&after="+cursor), &feed); err != nil {
			t.Fatal(err)
		}
		if len(feed.Changes) == 0 {
			break
		}
	}
	idleAt := feed.Next
	const rounds = 20
	st := measured(t, s, rounds, func() {
		for range rounds {
			get(changeevent.PathFeed + "?after=" + idleAt)
		}
	})
	st.rss = peakRSS(t, s.conference)
	report(t, n, "pull (feed)", "idle poll", st)

	if _, err := s.api.updateConference(ctx, state.Conferences[0].ConferenceID, map[string]any{"name": "Changed once"}); err != nil {
		t.Fatal(err)
	}
	var changes int
	st = measured(t, s, 1, func() {
		var page changeevent.FeedPage
		if err := json.Unmarshal(get(changeevent.PathFeed+"?after="+idleAt), &page); err != nil {
			t.Fatal(err)
		}
		changes = len(page.Changes)
	})
	if changes != 1 {
		t.Fatalf("the poll after one change found %d changes", changes)
	}
	st.rss = peakRSS(t, s.conference)
	report(t, n, "pull (feed)", "poll after one change", st)

	pages := 0
	st = measured(t, s, 1, func() {
		for next := "/api/conferences/?limit=1000"; next != ""; pages++ {
			var page struct {
				Next *string `json:"next"`
			}
			if err := json.Unmarshal(get(next), &page); err != nil {
				t.Fatal(err)
			}
			next = ""
			if page.Next != nil {
				next = *page.Next
			}
		}
	})
	st.rss = peakRSS(t, s.conference)
	report(t, n, "pull (list)", fmt.Sprintf("whole-list poll, %d pages", pages), st)
}
