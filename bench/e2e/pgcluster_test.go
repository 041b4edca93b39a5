package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"conferencego/syncer/changeevent"
	"conferencego/syncer/pgcluster"
)

// pgCluster is a Postgres cluster of one test (pgcluster.Cluster), so that the test may stop and
// start a real server; it is stopped and removed when the test ends.
type pgCluster struct {
	t *testing.T
	c *pgcluster.Cluster
}

func startPGCluster(t *testing.T, settings ...string) *pgCluster {
	t.Helper()
	c, err := pgcluster.New(context.Background(), settings...)
	if errors.Is(err, pgcluster.ErrNoPostgres) {
		unavailable(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last lines of the Postgres log:\n%s", tailFile(c.LogFile(), 30))
		}
		c.Remove()
	})
	return &pgCluster{t: t, c: c}
}

// AdminURL is where the test creates its database.
func (p *pgCluster) AdminURL() string { return p.c.AdminURL() }

// Start starts the server again.
func (p *pgCluster) Start() {
	p.t.Helper()
	if err := p.c.Start(context.Background()); err != nil {
		p.t.Fatalf("%v\n%s", err, tailFile(p.c.LogFile(), 20))
	}
}

// Stop stops the server the way mode says (pg_ctl stop -m fast or immediate).
func (p *pgCluster) Stop(mode string) {
	p.t.Helper()
	if err := p.c.Stop(context.Background(), mode); err != nil {
		p.t.Fatal(err)
	}
}

// reconnectCheck gives the check a new connection after the server went away under the old one.
func (s *system) reconnectCheck() {
	s.t.Helper()
	s.db.Close(context.Background())
	s.db = connect(s.t, s.dbURL)
}

// TestPostgresRestart: the test's own Postgres server is stopped and started twice under a
// stream of writes, once cleanly (pg_ctl stop -m fast) and once as a crash (-m immediate, then
// recovery). Writes fail while it is down; the services reconnect by themselves (none of them
// exits) and the VO table converges.
func TestPostgresRestart(t *testing.T) {
	t.Parallel()
	for _, v := range allVariants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			mode := v.mode
			pg := startPGCluster(t, v.settings()...)
			s := setupVariant(t, v, options{adminURL: pg.AdminURL()})
			w := newWorkload(t, s.api, seed(t))
			stop := writeDuring(w, 20)
			for _, how := range []string{"fast", "immediate"} {
				sleepCtx(context.Background(), 3*time.Second)
				pg.Stop(how)
				// Down for 3 s: long enough for every service to notice and to retry.
				sleepCtx(context.Background(), 3*time.Second)
				pg.Start()
			}
			sleepCtx(context.Background(), 3*time.Second)
			n := stop()
			s.reconnectCheck()
			s.AwaitProjection(w.Created(), absenceAllowed)
			t.Logf("%s: %d writes, %d failed while Postgres was down", mode, n, len(w.Errors()))
		})
	}
}

// TestLongSourceTransaction: a transaction at the source changes a conference the way
// api-conference does (row and outbox row) and stays open 30 s (the duration) before it
// bumps the change marker, notifies and commits, while other writes go on. (Holding the marker
// slot's lock for 30 s would make every other write of that slot wait, and fail.) Nothing of it is visible until it commits; then it
// arrives, late: the syncer's lag metric (push: relay_publish_lag_seconds, whose observations
// start at the change; pull: api-attendee's attendee_internal_lag_seconds) shows the 30 s, and
// nothing is lost. In pull mode the other writes may wait behind the open transaction, since
// the change feed hands over in commit order only what is safely before every open one.
func TestLongSourceTransaction(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{push, pull} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := setup(t, mode, options{})
			w := newWorkload(t, s.api, seed(t))
			ids := createMany(t, s, w, 3)
			s.AwaitProjection(w.Created(), absenceAllowed)

			// Renames would wait for the held row's lock, and fail after api-conference's timeout.
			w.noRenames = true
			held := beginOutboxChange(t, s.dbURL, ids[0], "Held open")
			stop := writeDuring(w, 10)
			sleepCtx(context.Background(), 30*time.Second)
			n := stop()
			held.CommitWithMarker(t)
			requireNoWriteErrors(t, w)
			s.AwaitProjection(w.Created(), absenceAllowed)
			v, err := s.readVO(ids[0])
			if err != nil {
				t.Fatal(err)
			}
			if v == nil || v.Name != "Held open" || v.Version != held.version {
				t.Fatalf("the held change is not in the copy: VO %v, want version %d", v, held.version)
			}
			metric, url := "relay_publish_lag_seconds", s.syncers[0].URL()+"/metrics"
			if mode == pull {
				metric, url = "attendee_internal_lag_seconds", s.attendees[0].URL()+"/metrics"
			}
			// The held change took 30 s or more from its change (now() of its transaction) to the
			// copy: at least one observation lies above every bucket of 20 s or less.
			if count, le20 := metricSum(t, url, metric+"_count"), histogramBucket(t, url, metric, 20); count-le20 < 1 {
				t.Errorf("%s: %v observations, %v of them at most 20 s: the held change's lag does not show", metric, count, le20)
			}
			t.Logf("%s: %d writes during the 30 s; %s mean %.2f s", mode, n, metric, histogramMean(t, url, metric))
		})
	}
}

// histogramBucket is the cumulative count of the histogram name's largest bucket whose upper
// bound is at most le.
func histogramBucket(t *testing.T, url, name string, le float64) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	best, bestLE := 0.0, -1.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"_bucket{") {
			continue
		}
		_, rest, _ := strings.Cut(line, `le="`)
		bound, _, _ := strings.Cut(rest, `"`)
		b, err := strconv.ParseFloat(bound, 64)
		if err != nil || b > le || b < bestLE {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		best, bestLE = v, b
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return best
}

// TestNotifyStorm (push): another client sends NOTIFY on the relay's channel as fast as it can
// (8 connections in a loop) while the workload writes. The relay takes a notification as a
// wake-up only, so a storm costs it empty claims but loses and duplicates nothing: the copy
// converges strictly. The source's commit time (an API update's round trip) is measured with
// and without the storm and logged, never asserted: the machine is shared.
func TestNotifyStorm(t *testing.T) {
	t.Parallel()
	s := setup(t, push, options{})
	w := newWorkload(t, s.api, seed(t))
	ids := createMany(t, s, w, 8)
	s.AwaitProjection(w.Created(), tombstoneRequired)
	metrics := s.syncers[0].URL() + "/metrics"
	quiet := commitTimes(t, s, ids, 60)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	for range 8 {
		conn, err := pgx.Connect(context.Background(), s.dbURL)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer conn.Close(context.Background())
			n := 0
			for ctx.Err() == nil {
				if _, err := conn.Exec(ctx, "SELECT pg_notify($1, '')", changeevent.NotifyChannel); err != nil {
					break
				}
				n++
			}
			mu.Lock()
			sent += n
			mu.Unlock()
		})
	}
	batches0 := metricSum(t, metrics, "relay_batches_total")
	stormStart := time.Now()
	storm := commitTimes(t, s, ids, 60)
	stop := writeDuring(w, 20)
	sleepCtx(context.Background(), 3*time.Second)
	stop()
	cancel()
	wg.Wait()
	stormFor := time.Since(stormStart)
	requireNoWriteErrors(t, w)
	s.AwaitProjection(w.Created(), tombstoneRequired)
	t.Logf("NOTIFY storm: %d notifications in %s (%.0f/s), %v relay batches", sent, stormFor.Round(time.Millisecond),
		float64(sent)/stormFor.Seconds(), metricSum(t, metrics, "relay_batches_total")-batches0)
	t.Logf("update round trip without the storm: p50 %s p95 %s; with it: p50 %s p95 %s",
		quantile(quiet, 0.5), quantile(quiet, 0.95), quantile(storm, 0.5), quantile(storm, 0.95))
}

// commitTimes makes n updates, one at a time, of the conferences ids through the API and
// returns how long each took.
func commitTimes(t *testing.T, s *system, ids []int64, n int) []time.Duration {
	t.Helper()
	ctx := context.Background()
	out := make([]time.Duration, 0, n)
	for i := range n {
		start := time.Now()
		if _, err := s.api.updateConference(ctx, ids[i%len(ids)], map[string]any{"name": fmt.Sprintf("Timed %d", i)}); err != nil {
			t.Fatal(err)
		}
		out = append(out, time.Since(start))
	}
	return out
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(q*float64(len(s))))].Round(10 * time.Microsecond)
}
