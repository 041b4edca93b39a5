package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"conferencego/syncer/changeevent"
)

// lenientIn is the check for a test in mode that legitimately may never show a short-lived
// conference to api-attendee: pull always may; push may only when the test loses Redis data.
func lenientIn(mode string) strictness {
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
	for _, mode := range []string{push, pull} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := setup(t, mode, options{})
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
			s.AwaitProjection(w.Created(), lenientIn(mode))
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
	for _, mode := range []string{push, pull} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := setup(t, mode, options{})
			sd := seed(t)
			w := newWorkload(t, s.api, sd)
			rng := rand.New(rand.NewPCG(uint64(sd), 99))
			kills := runWithFaults(t, w, 500, 60, rng, 200*time.Millisecond, 1500*time.Millisecond, s.syncers[0].Restart)
			t.Logf("killed the syncer %d times during %d writes", kills, w.Writes())
			if kills == 0 {
				t.Fatal("the burst ended before the first kill")
			}
			requireNoWriteErrors(t, w)
			s.AwaitProjection(w.Created(), lenientIn(mode))
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
			s.AwaitProjection(w.Created(), lenientIn(mode))
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

// TestRedisRestartedEmpty (push): in the middle of a burst, with events in the stream that
// api-attendee has not read yet, redis-server is killed and started again empty on the same
// port. Nobody does anything else: the relay notices that Redis lost its data and reconciles,
// the consumer recreates its group, and the VO table converges. Conferences whose every event
// was lost may be absent; one that reached api-attendee must end right (tombstoned if deleted).
func TestRedisRestartedEmpty(t *testing.T) {
	t.Parallel()
	s := setup(t, push, options{})
	w := newWorkload(t, s.api, seed(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, 500, 4, 60)
	}()
	defer func() {
		cancel()
		<-done
	}()

	awaitCondition(t, 30*time.Second, "200 writes", func() bool { return w.Writes() >= 200 })
	// Freeze the consumer so that the stream holds events it has not applied when Redis dies:
	// only the reconcile can bring those back.
	s.attendees[0].Freeze()
	before := s.rdb.XLen(context.Background(), s.stream).Val()
	awaitCondition(t, 30*time.Second, "30 events relayed while api-attendee is frozen", func() bool {
		return s.rdb.XLen(context.Background(), s.stream).Val() >= before+30
	})
	unread := s.rdb.XLen(context.Background(), s.stream).Val() - before
	s.redis.Kill()
	s.redis.Start()
	s.attendees[0].Thaw()
	t.Logf("redis-server restarted empty after %d writes, with at least %d events api-attendee had not read", w.Writes(), unread)

	<-done
	requireNoWriteErrors(t, w)
	s.AwaitProjection(w.Created(), absenceAllowed)
	metrics := s.syncers[0].URL() + "/metrics"
	t.Logf("the relay found Redis without its epoch marker %v times and reconciled %v times (both count the start)",
		metricSum(t, metrics, "relay_epochs_started_total"), metricSum(t, metrics, "relay_reconciles_total"))
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

// TestRedisDown (push): redis-server stops for ten seconds while writes go on. Every write
// succeeds (api-conference never touches Redis), the outbox holds the events meanwhile, and
// everything arrives after. This Redis keeps its data (append-only file), as a Redis that is
// down rather than wiped: so nothing may be missing, not even a short-lived conference.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	s := setup(t, push, options{persistRedis: true})
	w := newWorkload(t, s.api, seed(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, 600, 4, 30)
	}()
	defer func() {
		cancel()
		<-done
	}()

	awaitCondition(t, 30*time.Second, "100 writes", func() bool { return w.Writes() >= 100 })
	s.redis.Stop()
	at := w.Writes()
	sleepCtx(context.Background(), 10*time.Second) // the outage itself
	during := w.Writes() - at
	var waiting int
	if err := s.db.QueryRow(context.Background(), "SELECT count(*) FROM conference.outbox").Scan(&waiting); err != nil {
		t.Fatal(err)
	}
	requireNoWriteErrors(t, w)
	t.Logf("Redis was down for 10s: %d writes succeeded meanwhile; %d outbox rows waiting", during, waiting)
	if during == 0 {
		t.Fatal("no write succeeded while Redis was down")
	}
	if waiting == 0 {
		t.Fatal("the outbox is empty while Redis is down: where did the events go?")
	}
	s.redis.Start()

	<-done
	requireNoWriteErrors(t, w)
	s.AwaitProjection(w.Created(), tombstoneRequired)
}

// TestConferenceDown (pull): api-conference stops for ten seconds between two bursts; the
// poller survives, backs off and catches up.
func TestConferenceDown(t *testing.T) {
	t.Parallel()
	s := setup(t, pull, options{})
	w := newWorkload(t, s.api, seed(t))
	ctx := context.Background()
	w.Run(ctx, 150, 4, 50)
	metrics := s.syncers[0].URL() + "/metrics"
	s.conference.Stop()
	before := metricSum(t, metrics, "poller_errors_total")
	const outage = 10 * time.Second
	sleepCtx(ctx, outage) // the outage itself
	failed := metricSum(t, metrics, "poller_errors_total") - before
	if err := s.Check(); err != nil {
		t.Fatalf("while api-conference was down: %v", err)
	}
	s.conference.Start()
	// Without back-off the poller would fail once per interval. A slow machine only makes
	// fewer attempts, so this bound cannot fail for want of speed.
	steady := float64(outage / pollInterval)
	t.Logf("%v failed polls while api-conference was down for %s (%v at the poll interval)", failed, outage, steady)
	if failed == 0 {
		t.Error("the poller never noticed that api-conference was down")
	}
	if failed > steady/2 {
		t.Errorf("%v failed polls in %s: the poller does not back off", failed, outage)
	}
	w.Run(ctx, 150, 4, 50)
	requireNoWriteErrors(t, w)
	s.AwaitProjection(w.Created(), absenceAllowed)
}

// TestOutboxCommitOrder (push): four transactions, made the way api-conference makes them (the
// conference row, its outbox row, the change marker and pg_notify in one transaction), take
// outbox ids in one order and commit in the reverse order, the lowest id last and some time
// after the others. A relay that reads "WHERE id > last_id" skips it; every one must arrive.
func TestOutboxCommitOrder(t *testing.T) {
	t.Parallel()
	s := setup(t, push, options{})
	ctx := context.Background()
	w := newWorkload(t, s.api, seed(t))
	var ids []int64
	for i := range 4 {
		c, err := s.api.createConference(ctx, fmt.Sprintf("Ordered %d", i), time.Date(2027, 5, 1+i, 9, 0, 0, 0, time.UTC), 2, 100, w.locations[0])
		if err != nil {
			t.Fatal(err)
		}
		w.AddCreated(c.ID)
		ids = append(ids, c.ID)
	}
	s.AwaitProjection(w.Created(), tombstoneRequired)

	slots := map[int64]bool{}
	for _, id := range ids {
		slots[id%16] = true
	}
	if len(slots) != 4 {
		t.Fatalf("conferences %v share change-marker slots: the transactions would wait on each other", ids)
	}
	txs := make([]*outboxTx, 4)
	for i, id := range ids {
		txs[i] = beginOutboxUpdate(t, s.dbURL, id, fmt.Sprintf("Reordered %d", i))
	}
	for i := 1; i < 4; i++ {
		if txs[i].outboxID <= txs[i-1].outboxID {
			t.Fatalf("outbox ids not ascending: %d then %d", txs[i-1].outboxID, txs[i].outboxID)
		}
	}
	for i := 3; i >= 1; i-- {
		txs[i].Commit(t)
	}
	// Give the relay the chance to publish the later rows while the first is still open, and
	// see that it did: they leave the outbox once Redis has them. A relay that waits for the
	// open transaction instead (an xid8 cursor) is correct too, so this wait is bounded.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var left int
		if err := s.db.QueryRow(ctx, "SELECT count(*) FROM conference.outbox WHERE id = ANY($1)",
			[]int64{txs[1].outboxID, txs[2].outboxID, txs[3].outboxID}).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			t.Logf("the relay published the three later rows while the first was uncommitted")
			break
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
	txs[0].Commit(t)
	for i, id := range ids {
		v := txs[i].version
		s.AwaitVO(id, func(got *vo) bool { return got != nil && got.Version == v })
	}
	s.AwaitProjection(w.Created(), tombstoneRequired)
}

// TestTwoRelaysTwoConsumers (push): two syncers relay the same outbox and two api-attendee
// processes consume in the same group; nothing is lost or left stale, and both consumers work.
func TestTwoRelaysTwoConsumers(t *testing.T) {
	t.Parallel()
	s := setup(t, push, options{})
	s.AddSyncer()
	s.AddAttendee()
	w := newWorkload(t, s.api, seed(t))
	w.Run(context.Background(), 400, 4, 80)
	requireNoWriteErrors(t, w)
	s.AwaitProjection(w.Created(), tombstoneRequired)

	consumers, err := s.rdb.XInfoConsumers(context.Background(), s.stream, s.group).Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("consumers of group %s: %+v", s.group, consumers)
	for _, p := range s.attendees {
		n := metricSum(t, p.URL()+"/metrics", "attendee_consumer_entries_read_total")
		t.Logf("%s read %v entries", p.name, n)
		if n == 0 {
			t.Errorf("%s read no entries: the group's work was not shared", p.name)
		}
	}
}

// TestPoisonEntry (push): entries that cannot be applied, put into the stream among the
// relay's, end in the dead-letter stream with a reason, and everything after them is applied.
func TestPoisonEntry(t *testing.T) {
	t.Parallel()
	s := setup(t, push, options{})
	ctx := context.Background()
	w := newWorkload(t, s.api, seed(t))
	w.Run(ctx, 50, 2, 50)

	poison := map[string][]any{
		"garbage fields": {"hello", "world", "type", "conference.exploded"},
		"data of another conference": {
			changeevent.FieldEventID, "poison-2", changeevent.FieldType, string(changeevent.Updated),
			changeevent.FieldConferenceID, "1", changeevent.FieldVersion, "99",
			changeevent.FieldOccurredAt, time.Now().UTC().Format(time.RFC3339Nano),
			changeevent.FieldData, `{"id": 2, "href": "/api/conferences/2/", "name": "x"}`,
		},
	}
	ids := map[string]string{}
	for what, fields := range poison {
		id, err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.stream, Values: fields}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = what
	}
	w.Run(ctx, 100, 2, 50)
	requireNoWriteErrors(t, w)
	s.AwaitProjection(w.Created(), tombstoneRequired)

	dlq := s.stream + changeevent.DeadLetterSuffix
	awaitCondition(t, 30*time.Second, "both poison entries in "+dlq, func() bool {
		entries, err := s.rdb.XRange(ctx, dlq, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, e := range entries {
			if what, ok := ids[fmt.Sprint(e.Values["dlq_source_id"])]; ok {
				t.Logf("dead letter of %s: %v", what, e.Values["dlq_reason"])
				found++
			}
		}
		return found == len(ids)
	})
}

// metricSum adds up every sample of the Prometheus metric name at url.
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
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
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

// TestConsumerDownLongerThanTheStream (push): api-attendee is killed, and while it is down more
// changes are relayed than the stream keeps (SYNC_STREAM_MAXLEN, here its minimum, 1000), so
// Redis trims entries the group never read: here the creates of 20 conferences that nothing
// touches afterwards. Redis has lost events just as in a restart without persistence, and the
// system must notice and make up for them the same way: when api-attendee is back, the VO table
// must converge.
func TestConsumerDownLongerThanTheStream(t *testing.T) {
	t.Parallel()
	const maxLen = 1000
	s := setup(t, push, options{streamMaxLen: maxLen})
	w := newWorkload(t, s.api, seed(t))
	w.noRenames = true // a rename would give the trimmed conferences new events
	ctx := context.Background()
	w.Run(ctx, 100, 4, 100)
	requireNoWriteErrors(t, w)
	s.AwaitProjection(w.Created(), tombstoneRequired)
	// The reconciles the syncer runs at its start (and their follow-ups) must be over, or one
	// of them, retried until api-attendee is back, would make up for the trimmed entries by
	// chance rather than by design.
	awaitSteady(t, s.syncers[0].URL()+"/metrics", "relay_reconciles_total", 5*time.Second)

	s.attendees[0].Kill()
	trimmed := map[string]bool{}
	for i := range 20 {
		c, err := s.api.createConference(ctx, fmt.Sprintf("Trimmed %d", i), time.Date(2027, 9, 1+i, 9, 0, 0, 0, time.UTC), 2, 100, w.locations[2])
		if err != nil {
			t.Fatal(err)
		}
		w.AddCreated(c.ID)
		trimmed[strconv.FormatInt(c.ID, 10)] = true
	}
	w.Run(ctx, maxLen+300, 8, 200) // the workload's own conferences only
	requireNoWriteErrors(t, w)
	awaitCondition(t, 30*time.Second, "the relay emptying the outbox", func() bool {
		var rows int
		if err := s.db.QueryRow(ctx, "SELECT count(*) FROM conference.outbox").Scan(&rows); err != nil {
			t.Fatal(err)
		}
		return rows == 0
	})
	entries, err := s.rdb.XRange(ctx, s.stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if id := fmt.Sprint(e.Values[changeevent.FieldConferenceID]); trimmed[id] {
			t.Fatalf("the premise does not hold: the stream still holds an event of conference %s", id)
		}
	}
	groups, err := s.rdb.XInfoGroups(ctx, s.stream).Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the stream holds %d entries after %d writes; the group: %+v", len(entries), w.Writes(), groups)
	s.attendees[0].Start()
	s.AwaitProjection(w.Created(), absenceAllowed)
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

// TestListenerDropped (push): the relay's LISTEN connection is terminated by the server three
// times during a burst. The relay opens a new one each time (seen in pg_stat_activity), and
// everything arrives.
func TestListenerDropped(t *testing.T) {
	t.Parallel()
	s := setup(t, push, options{})
	sd := seed(t)
	w := newWorkload(t, s.api, sd)
	rng := rand.New(rand.NewPCG(uint64(sd), 97))
	admin := connect(t, s.dbURL) // s.db belongs to this goroutine's checks; faults run here too
	listeners := func() []int32 {
		rows, err := admin.Query(context.Background(),
			"SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'")
		if err != nil {
			t.Fatal(err)
		}
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			t.Fatal(err)
		}
		return pids
	}
	drops := runWithFaults(t, w, 300, 60, rng, 500*time.Millisecond, 1500*time.Millisecond, func() {
		var old []int32
		awaitCondition(t, 30*time.Second, "a LISTEN connection", func() bool { old = listeners(); return len(old) > 0 })
		if _, err := admin.Exec(context.Background(), "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", old); err != nil {
			t.Fatal(err)
		}
		awaitCondition(t, 30*time.Second, "a new LISTEN connection", func() bool {
			now := listeners()
			return len(now) > 0 && !slices.Contains(old, now[0])
		})
	})
	t.Logf("dropped the LISTEN connection %d times during %d writes", drops, w.Writes())
	if drops == 0 {
		t.Fatal("the burst ended before the first drop")
	}
	requireNoWriteErrors(t, w)
	s.AwaitProjection(w.Created(), tombstoneRequired)
}

// TestPullManyPages (pull): more conferences than one page of the list holds (the poller asks
// for pages of up to 1000). Creates, updates and deletes on the first and the last page all
// arrive: the poller follows the pages and finds deletes over the complete list.
func TestPullManyPages(t *testing.T) {
	t.Parallel()
	s := setup(t, pull, options{})
	w := newWorkload(t, s.api, seed(t))
	ctx := context.Background()
	const n = 1100
	ids := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for k := range 8 {
		wg.Go(func() {
			for i := k; i < n; i += 8 {
				var c created
				c, errs[i] = s.api.createConference(ctx, fmt.Sprintf("Paged %d", i),
					time.Date(2027, time.Month(1+i%12), 1+i%28, 9, 0, 0, 0, time.UTC), 2, 100, w.locations[i%3])
				ids[i] = c.ID
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		w.AddCreated(id)
	}
	s.AwaitProjection(w.Created(), tombstoneRequired)

	slices.Sort(ids)
	for _, id := range []int64{ids[0], ids[500], ids[n-1]} {
		if err := s.api.deleteConference(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []int64{ids[1], ids[999], ids[1000], ids[n-2]} {
		if _, err := s.api.updateConference(ctx, id, map[string]any{"name": fmt.Sprintf("Paged %d, renamed", id)}); err != nil {
			t.Fatal(err)
		}
	}
	s.AwaitProjection(w.Created(), tombstoneRequired)
}
