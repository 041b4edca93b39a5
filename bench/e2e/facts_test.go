package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"conferencego/bench/stack"
	"conferencego/syncer/changeevent"
)

// The tests of this file check that the copy is built from facts only: a wrong database, a
// spoilt listing or a forged version never makes it wrong for good, and never deletes what is
// live at the source.

// Ways a badProxy spoils the source's state listing.
const (
	proxyHonest   int32 = iota
	proxyTruncate       // the first page claims to be the last
	proxyEmpty          // every page is empty and the last
)

// badProxy stands between the syncer and api-conference, as a proxy with a bug would: it can
// cut the state listing short or empty it, while keeping the source's identity on it.
type badProxy struct {
	srv  *httptest.Server
	mode atomic.Int32
}

func newBadProxy(t *testing.T, target string) *badProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &badProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		mode := p.mode.Load()
		q := resp.Request.URL.Query()
		if mode == proxyHonest || resp.Request.URL.Path != changeevent.PathState || q.Has(changeevent.ParamIDs) || resp.StatusCode != http.StatusOK {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		var page changeevent.StatePage
		if err := json.Unmarshal(body, &page); err != nil {
			return err
		}
		page.Next = nil
		if mode == proxyEmpty {
			page.Conferences = []changeevent.Change{}
		}
		body, err = json.Marshal(page)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	p.srv = httptest.NewServer(rp)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *badProxy) URL() string { return p.srv.URL }

// reconcileMetric counts the syncer's finished reconciles in mode.
func reconcileMetric(mode string) string {
	if mode == push {
		return "relay_reconciles_total"
	}
	return "poller_reconciles_total"
}

// requireProjectionNow fails t unless the copy is the projection of the source right now.
func requireProjectionNow(t *testing.T, s *system, created map[int64]bool, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	live, vos, err := snapshot(ctx, s.db)
	if err != nil {
		t.Fatal(err)
	}
	if diffs := projectionDiff(live, vos, created, absenceAllowed); len(diffs) > 0 {
		t.Fatalf("%s: the copy is not the source's projection; %d differences, first: %s", what, len(diffs), diffs[0])
	}
}

// createMany creates n conferences through the API, 8 at a time.
func createMany(t *testing.T, s *system, w *workload, n int) []int64 {
	t.Helper()
	ctx := context.Background()
	ids := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for k := range 8 {
		wg.Go(func() {
			for i := k; i < n; i += 8 {
				var c created
				c, errs[i] = s.api.createConference(ctx, fmt.Sprintf("Many %d", i),
					time.Date(2027, time.Month(1+i%12), 1+i%28, 9, 0, 0, 0, time.UTC), 2, 100, w.locations[i%3])
				ids[i] = c.ID
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		w.AddCreated(ids[i])
	}
	return ids
}

// TestWrongDatabaseIsNoticedNotObeyed: api-conference is restarted against an empty database
// (a wrong DATABASE_URL). The syncer notices another source, hands nothing over, says so in
// /readyz and a metric, and registration for live conferences goes on. Once the right database
// is back, syncing resumes by itself.
func TestWrongDatabaseIsNoticedNotObeyed(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{pull, push} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := setup(t, mode, options{reconcileInterval: time.Second})
			w := newWorkload(t, s.api, seed(t))
			ctx := context.Background()
			ids := createMany(t, s, w, 60)
			s.AwaitProjection(w.Created(), tombstoneRequired)

			s.conference.Stop()
			s.conference.SetEnv("DATABASE_URL", newDatabase(t))
			s.conference.Start()
			metrics := s.syncers[0].URL() + "/metrics"
			awaitCondition(t, convergeWithin, "the syncer notices another source", func() bool {
				return metricSum(t, metrics, "sync_source_mismatch") == 1
			})
			if code := getStatus(t, s.syncers[0].URL()+"/readyz"); code != http.StatusServiceUnavailable {
				t.Errorf("syncer /readyz = %d while the source is wrong, want 503", code)
			}
			// A few more rounds against the wrong source: still nothing is lost.
			awaitCondition(t, convergeWithin, "two more rounds", func() bool {
				return metricSum(t, metrics, "sync_source_mismatch") == 1 && metricSum(t, metrics, reconcileErrorsMetric(mode)) >= 3
			})
			requireProjectionNow(t, s, w.Created(), "while api-conference used the wrong database")
			if code := register(t, s, ids[0], "live@example.com"); code != http.StatusCreated {
				t.Errorf("registration for a live conference while the source is wrong: %d, want 201", code)
			}

			s.conference.Stop()
			s.conference.SetEnv("DATABASE_URL", s.dbURL)
			s.conference.Start()
			awaitCondition(t, convergeWithin, "the syncer sees the right source again", func() bool {
				return metricSum(t, metrics, "sync_source_mismatch") == 0
			})
			if _, err := s.api.updateConference(ctx, ids[1], map[string]any{"name": "After the scare"}); err != nil {
				t.Fatal(err)
			}
			if err := s.api.deleteConference(ctx, ids[2]); err != nil {
				t.Fatal(err)
			}
			s.AwaitProjection(w.Created(), tombstoneRequired)
		})
	}
}

func reconcileErrorsMetric(mode string) string {
	if mode == push {
		return "relay_reconcile_errors_total"
	}
	return "poller_errors_total"
}

func getStatus(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func register(t *testing.T, s *system, conferenceID int64, email string) int {
	t.Helper()
	body := fmt.Sprintf(`{"email": %q, "name": "Ada"}`, email)
	resp, err := http.Post(fmt.Sprintf("%s/api/conferences/%d/attendees/", s.attendees[0].URL(), conferenceID),
		"application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSpoiltListingsDeleteNothing: the syncer starts (and reconciles) through a proxy that
// cuts the state listing after its first page, then through one that empties it. Nothing live
// is tombstoned; the conferences the listing lacked are asked about one by one.
func TestSpoiltListingsDeleteNothing(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{pull, push} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := setup(t, mode, options{proxy: true})
			w := newWorkload(t, s.api, seed(t))
			createMany(t, s, w, 1100) // more than one page of 1000
			s.AwaitProjection(w.Created(), tombstoneRequired)
			for _, spoil := range []int32{proxyTruncate, proxyEmpty} {
				s.proxy.mode.Store(spoil)
				s.syncers[0].Restart()
				awaitCondition(t, convergeWithin, "the reconcile at start", func() bool {
					return metricSum(t, s.syncers[0].URL()+"/metrics", reconcileMetric(mode)) >= 1
				})
				requireProjectionNow(t, s, w.Created(), fmt.Sprintf("after a reconcile over a spoilt listing (%d)", spoil))
			}
			s.proxy.mode.Store(proxyHonest)
			w.Run(context.Background(), 100, 4, 100)
			requireNoWriteErrors(t, w)
			s.AwaitProjection(w.Created(), tombstoneRequired)
		})
	}
}

// TestForgedVersionIsRepaired: a change with version 2^62 that no source ever made (a
// conference.deleted for a live conference) reaches the copy. The next reconcile puts the
// source's state back, although its version is lower, and a real update after it arrives.
func TestForgedVersionIsRepaired(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{push, pull} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := setup(t, mode, options{reconcileInterval: 2 * time.Second})
			w := newWorkload(t, s.api, seed(t))
			ctx := context.Background()
			ids := createMany(t, s, w, 10)
			s.AwaitProjection(w.Created(), tombstoneRequired)
			victim := ids[3]
			forged := changeevent.Event{ID: "forged-" + stack.RandomHex(4), Type: changeevent.Deleted, ConferenceID: victim,
				Version: 1 << 62, OccurredAt: time.Now().UTC()}
			forge(t, s, forged)
			awaitCondition(t, convergeWithin, "the forged delete is applied", func() bool {
				var deleted bool
				err := s.db.QueryRow(ctx, "SELECT deleted FROM attendee.conference_vos WHERE conference_id = $1", victim).Scan(&deleted)
				return err == nil && deleted
			})
			s.AwaitProjection(w.Created(), tombstoneRequired)
			if _, err := s.api.updateConference(ctx, victim, map[string]any{"name": "Real update"}); err != nil {
				t.Fatal(err)
			}
			s.AwaitProjection(w.Created(), tombstoneRequired)
		})
	}
}

// forge puts e into the copy's way the mode offers: the stream, or the internal endpoint with
// the token and the bound source.
func forge(t *testing.T, s *system, e changeevent.Event) {
	t.Helper()
	ctx := context.Background()
	if s.mode == push {
		fields, err := e.Fields()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.stream, Values: fields}).Err(); err != nil {
			t.Fatal(err)
		}
		return
	}
	var binding changeevent.SourceBinding
	internal(t, s, http.MethodGet, changeevent.PathSource, nil, &binding)
	c, err := changeevent.ChangeOf(e)
	if err != nil {
		t.Fatal(err)
	}
	internal(t, s, http.MethodPost, changeevent.PathHandover, changeevent.Handover{Source: binding.Source, Changes: []changeevent.Change{c}}, nil)
}

func internal(t *testing.T, s *system, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.attendees[0].URL()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDeleteThenRecreate: a conference is deleted, then made again under the same id by SQL
// (an import). The new one outranks its own tombstone and reaches the copy.
func TestDeleteThenRecreate(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{pull, push} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			// Push learns of changes made by SQL behind the API only from a reconcile.
			s := setup(t, mode, options{reconcileInterval: 2 * time.Second})
			w := newWorkload(t, s.api, seed(t))
			ctx := context.Background()
			id := createMany(t, s, w, 3)[1]
			if err := s.api.deleteConference(ctx, id); err != nil {
				t.Fatal(err)
			}
			s.AwaitProjection(w.Created(), tombstoneRequired)
			if _, err := s.db.Exec(ctx, `INSERT INTO conference.conferences
				(id, name, starts, ends, max_presentations, max_attendees, location_id)
				OVERRIDING SYSTEM VALUE VALUES ($1, 'Born again', '2027-05-01', '2027-05-02', 1, 10, $2)`, id, w.locations[0]); err != nil {
				t.Fatal(err)
			}
			s.AwaitProjection(w.Created(), tombstoneRequired)
		})
	}
}

// TestOutOfOrderCommitsAndRollbacks (pull): a transaction that began first commits last, and
// another rolls back; the feed serves each committed change once every transaction that could
// precede it has ended, and never the rolled-back one.
func TestOutOfOrderCommitsAndRollbacks(t *testing.T) {
	t.Parallel()
	s := setup(t, pull, options{})
	w := newWorkload(t, s.api, seed(t))
	ctx := context.Background()
	ids := createMany(t, s, w, 3)
	s.AwaitProjection(w.Created(), tombstoneRequired)
	early := connect(t, s.dbURL)
	tx, err := early.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE conference.conferences SET name = 'Committed last' WHERE id = $1", ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.api.updateConference(ctx, ids[1], map[string]any{"name": "Committed first"}); err != nil {
		t.Fatal(err)
	}
	rolled := connect(t, s.dbURL)
	rtx, err := rolled.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rtx.Exec(ctx, "UPDATE conference.conferences SET name = 'Never' WHERE id = $1", ids[2]); err != nil {
		t.Fatal(err)
	}
	if err := rtx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	s.AwaitProjection(w.Created(), tombstoneRequired)
}

// scaleConferences is how many conferences TestManyConferences inserts: E2E_SCALE (task
// test:scale sets 1,000,000), else 10,000.
func scaleConferences(t *testing.T) int {
	t.Helper()
	if v := os.Getenv("E2E_SCALE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("E2E_SCALE=%q: want a positive whole number", v)
		}
		return n
	}
	return 10_000
}

// maxPeakRSS is what no process may reach while syncing however many conferences: the work
// is done in bounded pages and chunks, so memory must not grow with the table.
const maxPeakRSS = 200 << 20

// TestManyConferences: many conferences arrive by SQL, as an import would; the syncer's
// reconcile at start brings them over in pages and chunks. Then one location rename changes
// 10,000 of them in one transaction. Each process's peak memory stays bounded.
func TestManyConferences(t *testing.T) {
	t.Parallel()
	n := scaleConferences(t)
	for _, mode := range []string{pull, push} {
		t.Run(mode, func(t *testing.T) {
			if os.Getenv("E2E_SCALE_REPORT") == "" {
				// For the numbers of bench:scale the two run one after the other, each with
				// the machine to itself.
				t.Parallel()
			}
			s := setup(t, mode, options{})
			w := newWorkload(t, s.api, seed(t))
			ctx := context.Background()
			// Stopped while the import runs, so that what is measured next is a first sync
			// (pull) or a reconcile (push) of the whole table, not a feed that kept up with it.
			s.syncers[0].Stop()
			start := time.Now()
			if _, err := s.db.Exec(ctx, `INSERT INTO conference.conferences (name, starts, ends, max_presentations, max_attendees, location_id)
				SELECT 'Imported ' || g, '2027-01-01'::timestamptz + g * interval '1 minute', '2027-01-02'::timestamptz + g * interval '1 minute',
					5, 100, CASE WHEN g <= 10000 THEN $2::bigint ELSE $3::bigint END
				FROM generate_series(1, $1::int) AS g`, n, w.locations[0], w.locations[1]); err != nil {
				t.Fatal(err)
			}
			t.Logf("inserted %d conferences by SQL in %s", n, time.Since(start).Round(time.Millisecond))
			all := w.Created()
			rows, err := s.db.Query(ctx, "SELECT id FROM conference.conferences")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				all[id] = true
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			reconciles := "poller_reconciles_total"
			if mode == push {
				reconciles = "relay_reconciles_total"
			}
			st := measured(t, s, 1, func() {
				s.syncers[0].Start()
				// Waiting on the syncer's own count, not by comparing the tables: that comparison
				// reads every conference each time, and would be counted as the reconcile's reads.
				awaitCondition(t, scaleWithin(n), "the syncer's first reconcile", func() bool {
					return metricSum(t, s.syncers[0].URL()+"/metrics", reconciles) >= 1
				})
			})
			awaitProjection(t, s.db, all, tombstoneRequired, scaleWithin(n), s.Check)
			st.rss = peakRSS(t, s.conference, s.attendees[0], s.syncers[0])
			what := "pull's first sync"
			if mode == push {
				what = "push's reconcile"
			}
			report(t, n, mode, what, st)

			if mode == pull {
				measurePolls(t, s, n)
			}
			start = time.Now()
			// One transaction of 10,000 rows may outlast api-conference's 15 s request budget on a
			// busy machine; it then answers 503 with Retry-After, and a client tries again.
			err = s.api.renameLocation(ctx, w.locations[0], "Renamed in one transaction")
			for try := 1; err != nil && strings.Contains(err.Error(), "503") && try < 5; try++ {
				t.Logf("rename answered 503, trying again: %v", err)
				err = s.api.renameLocation(ctx, w.locations[0], "Renamed in one transaction")
			}
			if err != nil {
				t.Fatal(err)
			}
			// n, not 10,000: a transaction that overlapped the listing's start (another import, here the
			// other subtest's) holds the feed's cursor back, and the poller then reads the listing's rows
			// once more from the feed before it reaches the rename; harmless, and bounded by n.
			awaitProjection(t, s.db, all, tombstoneRequired, scaleWithin(n), s.Check)
			t.Logf("%s: a rename that changed %d conferences in one transaction arrived in %s", mode, min(n, 10_000), time.Since(start).Round(time.Millisecond))
			for _, p := range []*proc{s.conference, s.attendees[0], s.syncers[0]} {
				rss, err := p.PeakRSS()
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s: peak RSS of %s: %d MiB", mode, p.name, rss>>20)
				if rss > maxPeakRSS {
					t.Errorf("%s peaked at %d MiB with %d conferences: memory grows with the table", p.name, rss>>20, n)
				}
			}
		})
	}
}

// scaleWithin is the convergence deadline for n conferences: generous, since the machine is
// shared; the time taken is logged.
func scaleWithin(n int) time.Duration {
	return convergeWithin + time.Duration(n)*time.Millisecond
}
