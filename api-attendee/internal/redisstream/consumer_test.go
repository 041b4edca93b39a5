package redisstream

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/api-attendee/internal/postgres"
	"conferencego/api-attendee/internal/postgres/pgtest"
	"conferencego/api-attendee/internal/redisstream/redistest"
	"conferencego/syncer/changeevent"
	"conferencego/syncer/redisconn"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// counts are a consumer's counters, read from its Prometheus metrics.
type counts struct {
	Read, Reclaimed, Applied, DeadLettered, Retries, GroupsCreated int64
}

func statsOf(c *Consumer) counts {
	n := func(m prometheus.Counter) int64 { return int64(testutil.ToFloat64(m)) }
	return counts{
		Read: n(c.m.read), Reclaimed: n(c.m.reclaimed), Applied: n(c.m.applied),
		DeadLettered: n(c.m.deadLettered), Retries: n(c.m.retries), GroupsCreated: n(c.m.groupsCreated),
	}
}

type fixture struct {
	rdb    *redis.Client
	db     *bun.DB
	store  *postgres.Store
	stream string
	group  string
}

func setup(t testing.TB) fixture {
	t.Helper()
	rdb := redistest.Client(t)
	db, _ := pgtest.NewSchema(t)
	stream, group := redistest.Names(t, rdb)
	return fixture{rdb: rdb, db: db, store: postgres.NewStore(db), stream: stream, group: group}
}

// eventually polls cond until it holds, failing the test after a deadline.
func eventually(t *testing.T, what string, cond func() bool, state func() any) {
	t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("%s: not within 15s; %+v", what, state())
		case <-tick.C:
		}
	}
}

// config is a Consumer config with short waits, so tests run in milliseconds.
func (f fixture) config(name string) Config {
	return Config{
		Stream: f.stream, Group: f.group, Consumer: name,
		BatchSize: 10, Block: 50 * time.Millisecond,
		ClaimMinIdle: 100 * time.Millisecond, ClaimInterval: 20 * time.Millisecond,
		BackoffBase: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
	}
}

func mustConsumer(t testing.TB, rdb redis.UniversalClient, store Applier, cfg Config) *Consumer {
	t.Helper()
	c, err := New(rdb, store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func xadd(t *testing.T, rdb redis.UniversalClient, stream string, events ...changeevent.Event) []string {
	t.Helper()
	ids := make([]string, len(events))
	for i, e := range events {
		fields, err := e.Fields()
		if err != nil {
			t.Fatalf("fields of %+v: %v", e, err)
		}
		ids[i] = xaddRaw(t, rdb, stream, fields...)
	}
	return ids
}

func xaddRaw(t *testing.T, rdb redis.UniversalClient, stream string, fields ...string) string {
	t.Helper()
	values := make([]any, len(fields))
	for i, f := range fields {
		values[i] = f
	}
	id, err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: values}).Result()
	if err != nil {
		t.Fatalf("xadd: %v", err)
	}
	return id
}

// runUntil drives c one round at a time until done holds, failing the test after a deadline.
// Round errors are expected on the way (that is what the tests provoke) and only reported
// when the deadline passes.
func runUntil(t *testing.T, c *Consumer, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var lastErr error
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not reached within 15s; stats %+v; last round error: %v", statsOf(c), lastErr)
		}
		if _, err := c.runOnce(context.Background()); err != nil {
			lastErr = err
		}
	}
}

func pendingCount(t *testing.T, rdb redis.UniversalClient, stream, group string) int64 {
	t.Helper()
	p, err := rdb.XPending(context.Background(), stream, group).Result()
	if err != nil {
		t.Fatalf("xpending: %v", err)
	}
	return p.Count
}

func version(t *testing.T, store *postgres.Store, id int64) int64 {
	t.Helper()
	c, err := store.GetConferenceVO(context.Background(), id)
	if errors.Is(err, attendee.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return c.Version
}

func TestConsumerAppliesAndAcks(t *testing.T) {
	t.Parallel()
	f := setup(t)
	// Written before the group exists: a new group must read the backlog.
	xadd(t, f.rdb, f.stream,
		pgtest.Created(1, 1, "A", 10), pgtest.Created(2, 1, "B", 10), pgtest.Created(1, 2, "A2", 10),
		pgtest.Deleted(2, 2), pgtest.Created(1, 2, "A2", 10), pgtest.Created(3, 1, "C", 10),
	)
	c := mustConsumer(t, f.rdb, f.store, f.config("c1"))
	runUntil(t, c, func() bool { return statsOf(c).Applied == 6 })

	got := map[int64]int64{1: version(t, f.store, 1), 2: version(t, f.store, 2), 3: version(t, f.store, 3)}
	if diff := cmp.Diff(map[int64]int64{1: 2, 2: 2, 3: 1}, got); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	if vo, _ := f.store.GetConferenceVO(context.Background(), 2); !vo.Deleted {
		t.Errorf("conference 2 is not tombstoned")
	}
	if n := pendingCount(t, f.rdb, f.stream, f.group); n != 0 {
		t.Errorf("%d entries still pending after apply", n)
	}
	if s := statsOf(c); s.GroupsCreated != 1 || s.DeadLettered != 0 {
		t.Errorf("stats %+v: want the group created once and nothing dead-lettered", s)
	}
}

func TestConsumerReclaimsEntriesOfDeadConsumer(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	if err := f.rdb.XGroupCreateMkStream(ctx, f.stream, f.group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	xadd(t, f.rdb, f.stream, pgtest.Created(1, 1, "A", 10), pgtest.Created(2, 1, "B", 10), pgtest.Created(3, 1, "C", 10))
	// A consumer reads the entries and dies before it acks them: they stay pending for it.
	got, err := f.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: f.group, Consumer: "crashed", Streams: []string{f.stream, ">"}, Count: 10, Block: -1,
	}).Result()
	if err != nil || len(got[0].Messages) != 3 {
		t.Fatalf("read as the crashing consumer: %v, %v", got, err)
	}
	xadd(t, f.rdb, f.stream, pgtest.Created(4, 1, "D", 10))

	c := mustConsumer(t, f.rdb, f.store, f.config("survivor"))
	runUntil(t, c, func() bool { return statsOf(c).Applied == 4 })
	for id := int64(1); id <= 4; id++ {
		if v := version(t, f.store, id); v != 1 {
			t.Errorf("conference %d at version %d, want 1", id, v)
		}
	}
	if n := pendingCount(t, f.rdb, f.stream, f.group); n != 0 {
		t.Errorf("%d entries still pending", n)
	}
	if s := statsOf(c); s.Reclaimed != 3 {
		t.Errorf("reclaimed %d entries, want 3", s.Reclaimed)
	}
}

func TestConsumerDeadLettersAndGoesOn(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	// A real, persistent failure in the database for one conference's changes.
	db, store := f.db, f.store
	for _, q := range []string{
		`CREATE FUNCTION refuse_666() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN IF NEW.conference_id = 666 THEN RAISE EXCEPTION 'conference 666 is refused'; END IF; RETURN NEW; END $$`,
		`CREATE TRIGGER refuse_666 BEFORE INSERT OR UPDATE ON conference_vos FOR EACH ROW EXECUTE FUNCTION refuse_666()`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	garbage := xaddRaw(t, f.rdb, f.stream, "hello", "world")
	nul := pgtest.Created(5, 1, "nul \x00 inside", 10)
	fields, _ := nul.Fields() // the contract allows it; the copy cannot store it
	nulID := xaddRaw(t, f.rdb, f.stream, fields...)
	failing := xadd(t, f.rdb, f.stream, pgtest.Created(666, 1, "Refused", 10))[0]
	xadd(t, f.rdb, f.stream, pgtest.Created(1, 1, "A", 10), pgtest.Created(2, 1, "B", 10))

	cfg := f.config("c1")
	cfg.MaxDeliveries = 2
	c := mustConsumer(t, f.rdb, store, cfg)
	runUntil(t, c, func() bool { return statsOf(c).DeadLettered == 3 })
	runUntil(t, c, func() bool { return pendingCount(t, f.rdb, f.stream, f.group) == 0 })

	for id := int64(1); id <= 2; id++ {
		if v := version(t, store, id); v != 1 {
			t.Errorf("conference %d at version %d, want 1: a bad entry held back good ones", id, v)
		}
	}
	dlq, err := f.rdb.XRange(ctx, redisconn.Keys(f.stream).DeadLetter, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, m := range dlq {
		reasons[m.Values[changeevent.FieldDLQSourceID].(string)] = m.Values[changeevent.FieldDLQReason].(string)
	}
	for id, want := range map[string]string{
		garbage: "field event_id is missing",
		nulID:   "contains NUL",
		failing: "not applied after 2 deliveries",
	} {
		if !strings.Contains(reasons[id], want) {
			t.Errorf("dead letter of %s: reason %q, want it to mention %q", id, reasons[id], want)
		}
	}
	for _, m := range dlq {
		if m.Values[changeevent.FieldDLQSourceID] == failing && m.Values[changeevent.FieldConferenceID] != "666" {
			t.Errorf("dead letter lost the original fields: %v", m.Values)
		}
	}
}

func TestConsumerRecoversFromRedisRestartedEmpty(t *testing.T) {
	t.Parallel()
	f := setup(t)
	srv := redistest.StartServer(t)
	rdb := srv.Client(t)
	cfg := f.config("c1")
	cfg.BackoffBase, cfg.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	c := mustConsumer(t, rdb, f.store, cfg)

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- c.Run(ctx) }()
	defer func() {
		cancel()
		<-stopped
	}()
	stats := func() any { return statsOf(c) }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		eventually(t, what, cond, stats)
	}

	xadd(t, rdb, f.stream, pgtest.Created(1, 1, "A", 10))
	waitFor("first entry applied", func() bool { return version(t, f.store, 1) == 1 })

	srv.Kill(t)
	killed := time.Now()
	waitFor("consumer notices the outage", func() bool { return statsOf(c).Retries >= 5 })
	srv.Start(t)

	// Redis came back empty: no stream, no group. The consumer must recreate both.
	fields := [][]string{}
	for _, e := range []changeevent.Event{pgtest.Created(1, 2, "A2", 10), pgtest.Created(2, 1, "B", 10)} {
		f, err := e.Fields()
		if err != nil {
			t.Fatal(err)
		}
		fields = append(fields, f)
	}
	waitFor("XADD after the restart", func() bool {
		// The client's pool may still be failing fast after the outage; try until it connects.
		for len(fields) > 0 {
			values := make([]any, len(fields[0]))
			for i, v := range fields[0] {
				values[i] = v
			}
			if err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: f.stream, Values: values}).Err(); err != nil {
				return false
			}
			fields = fields[1:]
		}
		return true
	})
	waitFor("entries after the restart applied", func() bool {
		return version(t, f.store, 1) == 2 && version(t, f.store, 2) == 1
	})
	down := time.Since(killed) // from the kill until the consumer caught up again
	s := statsOf(c)
	if s.GroupsCreated < 2 {
		t.Errorf("group created %d times, want it recreated after the restart", s.GroupsCreated)
	}
	// With backoff from 20ms doubling to 200ms, jittered into the upper half of each step, a
	// disturbance of d allows about d/100ms + 5 rounds. A loop without backoff makes thousands
	// (the client fails fast: see redistest.Server.Client).
	limit := int64(down/(100*time.Millisecond)) + 10
	if s.Retries > limit {
		t.Errorf("%d retries during an outage of %s, want at most %d: the consumer is spinning", s.Retries, down, limit)
	}
	t.Logf("outage %s, %d retries, stats %+v", down.Round(time.Millisecond), s.Retries, s)
}

func TestConsumerStopsAfterTheBatchInHand(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for i := int64(1); i <= 200; i++ {
		xadd(t, f.rdb, f.stream, pgtest.Created(i, 1, "C", 10))
	}
	cfg := f.config("c1")
	cfg.BatchSize = 7
	c := mustConsumer(t, f.rdb, f.store, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- c.Run(ctx) }()
	eventually(t, "first batch applied", func() bool { return statsOf(c).Applied > 0 }, func() any { return statsOf(c) })
	cancel()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of cancel")
	}
	// Everything read was applied and acked: nothing is left pending for this consumer.
	if n := pendingCount(t, f.rdb, f.stream, f.group); n != 0 {
		t.Errorf("%d entries left pending after shutdown", n)
	}
	s := statsOf(c)
	if s.Read != s.Applied || s.Applied%7 != 0 {
		t.Errorf("read %d, applied %d: want every read entry applied, in whole batches of 7", s.Read, s.Applied)
	}
	// With nothing pending it left the group, so restarts do not pile up dead consumer names.
	consumers, err := f.rdb.XInfoConsumers(context.Background(), f.stream, f.group).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(consumers) != 0 {
		t.Errorf("consumers left in the group after shutdown: %+v", consumers)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := func(mod func(*Config)) Config {
		c := Config{}
		c.setDefaults()
		mod(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"defaults", ok(func(*Config) {}), ""},
		{"zero batch", ok(func(c *Config) { c.BatchSize = -1 }), "batch size"},
		{"block forever", ok(func(c *Config) { c.Block = -1 }), "block"},
		{"max deliveries", ok(func(c *Config) { c.MaxDeliveries = -2 }), "max deliveries"},
		{"backoff range", ok(func(c *Config) { c.BackoffMax = time.Millisecond }), "backoff"},
		{"empty stream", ok(func(c *Config) { c.Stream = "" }), "stream name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
	c := Config{}
	c.setDefaults()
	d := Config{}
	d.setDefaults()
	if c.Consumer == d.Consumer {
		t.Errorf("two consumers got the same default name %q", c.Consumer)
	}
}

// The consumer backs off with the shared backoff, from BackoffBase doubling to BackoffMax.
func TestBackoffFollowsTheConfig(t *testing.T) {
	t.Parallel()
	cfg := Config{Stream: "s", BackoffBase: 10 * time.Millisecond, BackoffMax: 80 * time.Millisecond}
	c := mustConsumer(t, nil, nil, cfg)
	for i, step := range []time.Duration{10, 20, 40, 80, 80, 80} {
		step *= time.Millisecond
		if d := c.backoff.Next(); d < step/2 || d > step {
			t.Errorf("wait %d = %s, want within [%s, %s]", i, d, step/2, step)
		}
	}
	c.backoff.Reset()
	if d := c.backoff.Next(); d > 10*time.Millisecond {
		t.Errorf("after reset: %s", d)
	}
}

func TestConsumersOfOneGroupShareTheWork(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const n = 300
	for i := int64(1); i <= n; i++ {
		xadd(t, f.rdb, f.stream, pgtest.Created(i%50+1, i/50+1, "C", 10))
	}
	a := mustConsumer(t, f.rdb, f.store, f.config("a"))
	b := mustConsumer(t, f.rdb, f.store, f.config("b"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- a.Run(ctx) }()
	go func() { done <- b.Run(ctx) }()
	// Every entry delivered (the group's lag is 0) and acked (none pending). On a loaded machine
	// a batch can take longer than ClaimMinIdle and be reclaimed and applied twice, as delivery
	// is at least once: so the count of applied entries may exceed n, and is not the test.
	eventually(t, "all entries applied", func() bool {
		groups, err := f.rdb.XInfoGroups(context.Background(), f.stream).Result()
		return err == nil && len(groups) == 1 && groups[0].Lag == 0 && groups[0].Pending == 0 &&
			statsOf(a).Applied+statsOf(b).Applied >= n
	}, func() any { return []counts{statsOf(a), statsOf(b)} })
	cancel()
	<-done
	<-done
	if statsOf(a).Applied == 0 || statsOf(b).Applied == 0 {
		t.Errorf("one consumer did all the work: %+v, %+v", statsOf(a), statsOf(b))
	}
	want := map[int64]int64{}
	for i := int64(1); i <= n; i++ {
		want[i%50+1] = max(want[i%50+1], i/50+1)
	}
	got := map[int64]int64{}
	for id := range want {
		got[id] = version(t, f.store, id)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
	if n := pendingCount(t, f.rdb, f.stream, f.group); n != 0 {
		t.Errorf("%d entries pending", n)
	}
}

// While the database is down the consumer must not reclaim, or every pending entry would run
// out of deliveries and be dead-lettered although nothing is wrong with it.
func TestDatabaseOutageDoesNotDeadLetter(t *testing.T) {
	t.Parallel()
	f := setup(t)
	xadd(t, f.rdb, f.stream, pgtest.Created(1, 1, "A", 10), pgtest.Created(2, 1, "B", 10))

	// Nothing listens on port 1: every query fails to connect.
	sqldb, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	down := bun.NewDB(sqldb, pgdialect.New())
	t.Cleanup(func() { down.Close() })
	cfg := f.config("same-name")
	cfg.MaxDeliveries = 2
	cfg.ClaimMinIdle, cfg.ClaimInterval = time.Millisecond, time.Millisecond
	c := mustConsumer(t, f.rdb, postgres.NewStore(down), cfg)
	for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
		_, _ = c.runOnce(context.Background())
	}
	if s := statsOf(c); s.DeadLettered != 0 || s.Read != 2 {
		t.Fatalf("stats during the outage %+v: want the entries read once and nothing dead-lettered", s)
	}
	// A consumer that stops with entries pending keeps its name, or they would be dropped.
	c.leaveGroup(context.Background())
	if n := pendingCount(t, f.rdb, f.stream, f.group); n != 2 {
		t.Fatalf("%d entries pending after the consumer left, want 2", n)
	}

	// The database is back (a consumer with a working store takes over the pending entries).
	c2 := mustConsumer(t, f.rdb, f.store, cfg)
	runUntil(t, c2, func() bool { return statsOf(c2).Applied == 2 })
	if s := statsOf(c2); s.DeadLettered != 0 {
		t.Errorf("dead-lettered %d entries after the outage", s.DeadLettered)
	}
}

// An apply that failed for a database reason is retried by the same consumer as soon as the
// backoff allows, not after ClaimMinIdle.
func TestFailedApplyIsRetriedPromptly(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	cfg := f.config("retrier")
	cfg.ClaimMinIdle = time.Hour // only the consumer's own retry can bring the entry back
	cfg.ApplyTimeout = 100 * time.Millisecond
	cfg.MaxDeliveries = 1000
	c := mustConsumer(t, f.rdb, f.store, cfg)

	// Another transaction holds the table: the apply times out, a failure of the database.
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "LOCK TABLE conference_vos IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	xadd(t, f.rdb, f.stream, pgtest.Created(1, 1, "A", 10))
	for statsOf(c).Read < 2 { // the first delivery and at least one retry fail
		if _, err := c.runOnce(ctx); err == nil && statsOf(c).Applied > 0 {
			t.Fatal("applied while the table was locked")
		}
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	runUntil(t, c, func() bool { return statsOf(c).Applied == 1 })
	if s := statsOf(c); s.Reclaimed != 0 || s.DeadLettered != 0 {
		t.Errorf("stats %+v: want the entry retried by its own consumer, not reclaimed or dead-lettered", s)
	}
	if version(t, f.store, 1) != 1 || pendingCount(t, f.rdb, f.stream, f.group) != 0 {
		t.Error("the entry is not applied and acked")
	}
}
