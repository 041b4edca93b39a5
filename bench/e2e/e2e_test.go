package e2e

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// deletesIn is what the check accepts of deleted conferences in mode when nothing loses data:
// pull mode may never have shown a short-lived conference to api-attendee; push mode relays
// every event, so every deleted conference has a tombstone.
func deletesIn(mode string) strictness {
	if mode == pull {
		return absenceAllowed
	}
	return tombstoneRequired
}

// TestPropagation: a create, an update and a delete each reach the VO table (push: within
// about a second, pull: within about two intervals; the time taken is logged, not asserted),
// and then a mixed workload ends in the projection.
func TestPropagation(t *testing.T) {
	t.Parallel()
	for _, v := range allVariants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			mode := v.mode
			s := setupVariant(t, v, options{})
			ctx := context.Background()
			w := newWorkload(t, s.api, seed(t))
			target := "1s"
			if mode == pull {
				target = (2 * pollInterval).String()
			}

			c, err := s.api.createConference(ctx, "GopherCon", time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC), 3, 500, w.locations[0])
			if err != nil {
				t.Fatal(err)
			}
			w.AddCreated(c.ID)
			took := s.AwaitVO(c.ID, func(v *vo) bool { return v != nil && !v.Deleted && v.Version == c.Version && v.Name == "GopherCon" })
			t.Logf("%s: create arrived after %s (target %s)", mode, took.Round(time.Millisecond), target)

			u, err := s.api.updateConference(ctx, c.ID, map[string]any{"name": "GopherCon 2027", "max_attendees": 600})
			if err != nil {
				t.Fatal(err)
			}
			if u.Version != c.Version+1 {
				t.Fatalf("update made version %d, want %d", u.Version, c.Version+1)
			}
			took = s.AwaitVO(c.ID, func(v *vo) bool {
				return v != nil && !v.Deleted && v.Version == u.Version && v.Name == "GopherCon 2027" && v.MaxAttendees == 600
			})
			t.Logf("%s: update arrived after %s (target %s)", mode, took.Round(time.Millisecond), target)

			if err := s.api.deleteConference(ctx, c.ID); err != nil {
				t.Fatal(err)
			}
			took = s.AwaitVO(c.ID, func(v *vo) bool { return v != nil && v.Deleted })
			v, _ := s.readVO(c.ID)
			t.Logf("%s: delete arrived after %s (target %s) as %s", mode, took.Round(time.Millisecond), target, v)
			if v.Version < u.Version {
				t.Errorf("tombstone has version %d, older than the last update's %d", v.Version, u.Version)
			}

			w.Run(ctx, 100, 2, 50)
			requireNoWriteErrors(t, w)
			s.AwaitProjection(w.Created(), deletesIn(mode))
		})
	}
}

// TestDeleteRightAfterUpdate: conferences deleted right after a change that api-attendee has
// already applied end tombstoned. Each conference reached api-attendee before its delete, so
// even pull mode must show the delete. In pull mode this is a delete that the poll after it
// must find by set difference within the same second as the conference's last change.
func TestDeleteRightAfterUpdate(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{push, pull} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := setup(t, mode, options{})
			ctx := context.Background()
			w := newWorkload(t, s.api, seed(t))
			// A few that stay, so that the list is never empty.
			for i := range 3 {
				c, err := s.api.createConference(ctx, fmt.Sprintf("Stays %d", i), time.Date(2027, 6, 1+i, 9, 0, 0, 0, time.UTC), 2, 100, w.locations[0])
				if err != nil {
					t.Fatal(err)
				}
				w.AddCreated(c.ID)
			}
			for i := range 5 {
				c, err := s.api.createConference(ctx, fmt.Sprintf("Short-lived %d", i), time.Date(2027, 7, 1+i, 9, 0, 0, 0, time.UTC), 2, 100, w.locations[1])
				if err != nil {
					t.Fatal(err)
				}
				w.AddCreated(c.ID)
				u, err := s.api.updateConference(ctx, c.ID, map[string]any{"max_attendees": 200})
				if err != nil {
					t.Fatal(err)
				}
				s.AwaitVO(c.ID, func(v *vo) bool { return v != nil && v.Version == u.Version })
				if err := s.api.deleteConference(ctx, c.ID); err != nil {
					t.Fatal(err)
				}
			}
			s.AwaitProjection(w.Created(), tombstoneRequired)
		})
	}
}

// runWithFaults runs n writes of w in the background and calls fault at random moments (every
// minGap to maxGap) until the writes are done; it returns how many times fault ran.
func runWithFaults(t *testing.T, w *workload, n int, rate float64, rng *rand.Rand, minGap, maxGap time.Duration, fault func()) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, n, 4, rate)
	}()
	defer func() {
		cancel()
		<-done
	}()
	faults := 0
	for {
		gap := minGap + time.Duration(rng.Int64N(int64(maxGap-minGap)))
		select {
		case <-done:
			return faults
		case <-time.After(gap):
		}
		fault()
		faults++
	}
}

// TestSyncerKilled: kill -9 of the syncer at random moments during a burst of 500 writes,
// restarted each time; the VO table converges.
func TestSyncerKilled(t *testing.T) {
	t.Parallel()
	for _, v := range allVariants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			mode := v.mode
			s := setupVariant(t, v, options{})
			sd := seed(t)
			w := newWorkload(t, s.api, sd)
			rng := rand.New(rand.NewPCG(uint64(sd), 99))
			kills := runWithFaults(t, w, 500, 60, rng, 200*time.Millisecond, 1500*time.Millisecond, s.syncers[0].Restart)
			t.Logf("killed the syncer %d times during %d writes", kills, w.Writes())
			if kills == 0 {
				t.Fatal("the burst ended before the first kill")
			}
			requireNoWriteErrors(t, w)
			s.AwaitProjection(w.Created(), deletesIn(mode))
		})
	}
}

// TestAttendeeKilled: kill -9 of api-attendee at random moments during a burst of 500 writes,
// restarted each time (in push mode as a new consumer of the group, which must reclaim what
// the dead one left pending); the VO table converges.
func TestAttendeeKilled(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{push, pull} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := setup(t, mode, options{})
			sd := seed(t)
			w := newWorkload(t, s.api, sd)
			rng := rand.New(rand.NewPCG(uint64(sd), 98))
			kills := runWithFaults(t, w, 500, 60, rng, time.Second, 3*time.Second, s.attendees[0].Restart)
			t.Logf("killed api-attendee %d times during %d writes", kills, w.Writes())
			if kills == 0 {
				t.Fatal("the burst ended before the first kill")
			}
			requireNoWriteErrors(t, w)
			s.AwaitProjection(w.Created(), deletesIn(mode))
		})
	}
}

// awaitCondition polls cond against a deadline and fails t with what if it never holds.
func awaitCondition(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		<-tick.C
	}
}

// awaitSteady waits until the metric name at url has not changed for quiet.
func awaitSteady(t *testing.T, url, name string, quiet time.Duration) {
	t.Helper()
	deadline := time.Now().Add(quiet + 60*time.Second)
	last, since := metricSum(t, url, name), time.Now()
	tick := time.NewTicker(100 * time.Millisecond) // polling against the deadline
	defer tick.Stop()
	for time.Since(since) < quiet {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not stay the same for %s", name, quiet)
		}
		<-tick.C
		if v := metricSum(t, url, name); v != last {
			last, since = v, time.Now()
		}
	}
}

// metricSum adds up every sample of the Prometheus metric name at url; a name may carry the
// start of a label set, as `relay_redis_losses_total{cause="behind"`, to add up only those.
func metricSum(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(name, "{") {
			if !strings.HasPrefix(line, name) {
				continue
			}
		} else if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestConferenceKilled: kill -9 of api-conference at random moments of a burst, restarted
// each time. Writes in flight fail (and may or may not have committed: the check reads what
// the database holds), but a change and its event commit together or not at all, so the VO
// table converges.
func TestConferenceKilled(t *testing.T) {
	t.Parallel()
	for _, v := range allVariants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			mode := v.mode
			s := setupVariant(t, v, options{})
			sd := seed(t)
			w := newWorkload(t, s.api, sd)
			rng := rand.New(rand.NewPCG(uint64(sd), 95))
			kills := runWithFaults(t, w, 300, 60, rng, time.Second, 2500*time.Millisecond, s.conference.Restart)
			t.Logf("killed api-conference %d times during %d writes; %d writes failed", kills, w.Writes(), len(w.Errors()))
			if kills == 0 {
				t.Fatal("the burst ended before the first kill")
			}
			s.AwaitProjection(w.Created(), deletesIn(mode))
		})
	}
}

// TestDatabaseConnectionsDropped: three times during a burst, the server terminates every
// connection to the test's database (what the services see of a Postgres restart). Writes in
// flight may fail then; the services reconnect by themselves, none of them exits, and the VO
// table converges.
func TestDatabaseConnectionsDropped(t *testing.T) {
	t.Parallel()
	for _, v := range allVariants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			mode := v.mode
			s := setupVariant(t, v, options{})
			sd := seed(t)
			w := newWorkload(t, s.api, sd)
			rng := rand.New(rand.NewPCG(uint64(sd), 96))
			// On the test's own server (the logical transport's is another): this connection
			// ends the others, its own and the check's excepted.
			admin := connect(t, s.dbURL)
			dbName := s.dbName()
			terminated := 0
			drops := runWithFaults(t, w, 300, 60, rng, time.Second, 2*time.Second, func() {
				var n int
				// s.db is the check's own connection, and stays; so does this one. The
				// logical transport's walsender is one of the database's connections too.
				if err := admin.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
					WHERE datname = $1 AND pid <> $2 AND pid <> pg_backend_pid()`, dbName, s.db.PgConn().PID()).Scan(&n); err != nil {
					t.Fatal(err)
				}
				terminated += n
			})
			t.Logf("terminated %d connections in %d rounds during %d writes; %d writes failed", terminated, drops, w.Writes(), len(w.Errors()))
			if errs := w.Errors(); len(errs) > 0 {
				t.Logf("the first failed write: %v", errs[0])
			}
			if drops == 0 {
				t.Fatal("the burst ended before the first round")
			}
			s.AwaitProjection(w.Created(), deletesIn(mode))
		})
	}
}

// TestPushWakeups: the other ways of waking the relay deliver every change too: the write's
// notification sent after its commit (OUTBOX_NOTIFY=after), and none at all, with a relay that
// polls the outbox and lingers for larger batches (OUTBOX_NOTIFY=off, SYNC_OUTBOX_POLL).
func TestPushWakeups(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]options{
		"after": {conferenceEnv: map[string]string{"OUTBOX_NOTIFY": "after"}},
		"poll": {
			conferenceEnv: map[string]string{"OUTBOX_NOTIFY": "off"},
			syncerEnv:     map[string]string{"SYNC_OUTBOX_POLL": "2ms", "SYNC_RELAY_LINGER": "500us"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := setup(t, push, opts)
			w := newWorkload(t, s.api, seed(t))
			w.Run(context.Background(), 100, 2, 50)
			requireNoWriteErrors(t, w)
			s.AwaitProjection(w.Created(), deletesIn(push))
			polls := metricSum(t, s.syncers[0].URL()+"/metrics", "relay_outbox_polls_total")
			if name == "poll" && polls == 0 {
				t.Error("the relay made no poll of the outbox in poll mode")
			}
			if name == "after" && polls != 0 {
				t.Errorf("the relay polled %v times with LISTEN", polls)
			}
		})
	}
}
