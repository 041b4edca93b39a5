package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"conferencego/syncer/changeevent"
	"conferencego/syncer/redisconn"
)

// TestPushRedisRestartedEmpty (push): in the middle of a burst, with events in the stream that
// api-attendee has not read yet, redis-server is killed and started again empty on the same
// port. Nobody does anything else: the relay notices that Redis lost its data and reconciles,
// the consumer recreates its group, and the VO table converges. Conferences whose every event
// was lost may be absent; one that reached api-attendee must end right (tombstoned if deleted).
func TestPushRedisRestartedEmpty(t *testing.T) {
	t.Parallel()
	for _, v := range pushVariants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			s := setupVariant(t, v, options{})
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
		})
	}
}

func TestPushRedisDown(t *testing.T) {
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

// TestPushOutboxCommitOrder (push): four transactions, made the way api-conference makes them (the
// conference row, its outbox row, the change marker and pg_notify in one transaction), take
// outbox ids in one order and commit in the reverse order, the lowest id last and some time
// after the others. A relay that reads "WHERE id > last_id" skips it; every one must arrive.
func TestPushOutboxCommitOrder(t *testing.T) {
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

// TestPushTwoRelaysTwoConsumers (push): two syncers relay the same outbox and two api-attendee
// processes consume in the same group; nothing is lost or left stale, and both consumers work.
func TestPushTwoRelaysTwoConsumers(t *testing.T) {
	t.Parallel()
	for _, v := range pushVariants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			s := setupVariant(t, v, options{})
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
		})
	}
}

func TestPushPoisonEntry(t *testing.T) {
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

	dlq := redisconn.Keys(s.stream).DeadLetter
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

// TestPushConsumerDownLongerThanTheStream (push): api-attendee is killed, and while it is down more
// changes are relayed than the stream keeps (SYNC_STREAM_MAXLEN, here its minimum, 1000), so
// Redis trims entries the group never read: here the creates of 20 conferences that nothing
// touches afterwards. Redis has lost events just as in a restart without persistence, and the
// system must notice and make up for them the same way: when api-attendee is back, the VO table
// must converge.
func TestPushConsumerDownLongerThanTheStream(t *testing.T) {
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

// TestPushListenerDropped (push): the relay's LISTEN connection is terminated by the server three
// times during a burst. The relay opens a new one each time (seen in pg_stat_activity), and
// everything arrives.
func TestPushListenerDropped(t *testing.T) {
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
