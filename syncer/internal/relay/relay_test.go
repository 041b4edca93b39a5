package relay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"conferencego/syncer/changeevent"
	"conferencego/syncer/redisconn"
)

// unavailable skips on a developer's machine and fails in CI.
func unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf(format, args...)
	}
	tb.Skipf(format, args...)
}

func randomName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newConferenceDB creates a database for tb holding api-conference's schema, built from that
// service's own migration files, and returns a pool whose search_path reaches the outbox.
func newConferenceDB(tb testing.TB) (*pgxpool.Pool, *pgx.ConnConfig) {
	tb.Helper()
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	return newConferenceDBAt(tb, admin)
}

// newConferenceDBAt is newConferenceDB on the server of the admin URL.
func newConferenceDBAt(tb testing.TB, admin string) (*pgxpool.Pool, *pgx.ConnConfig) {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		unavailable(tb, "Postgres is not reachable at %s (set TEST_DATABASE_URL): %v", admin, err)
	}
	defer conn.Close(ctx)
	name := "t_relay_" + randomName()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			tb.Error(err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Error(err)
		}
	})
	cfg, err := pgxpool.ParseConfig(admin)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.ConnConfig.Database = name
	cfg.ConnConfig.RuntimeParams["search_path"] = "conference"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, "CREATE SCHEMA conference"); err != nil {
		tb.Fatal(err)
	}
	files, err := filepath.Glob("../../../api-conference/internal/postgres/migrations/*.up.sql")
	if err != nil || len(files) == 0 {
		tb.Fatalf("api-conference's migrations not found next to this module: %v", err)
	}
	slices.Sort(files)
	for _, f := range files {
		sql, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := pool.Exec(ctx, string(sql)); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
	}
	return pool, cfg.ConnConfig.Copy()
}

func newRedis(tb testing.TB) *redis.Client {
	tb.Helper()
	url := os.Getenv("TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		unavailable(tb, "Redis is not reachable at %s (set TEST_REDIS_URL): %v", url, err)
	}
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

type bundle struct {
	pool   *pgxpool.Pool
	listen *pgx.ConnConfig
	rdb    *redis.Client
	stream string
}

func setup(t *testing.T) bundle {
	t.Helper()
	pool, listen := newConferenceDB(t)
	rdb := newRedis(t)
	stream := "test.relay." + randomName()
	t.Cleanup(func() {
		rdb.Del(context.Background(), stream, redisconn.Keys(stream).DeadLetter, EpochKey(stream))
	})
	return bundle{pool: pool, listen: listen, rdb: rdb, stream: stream}
}

func (b bundle) relay(t *testing.T, cfg Config) *Relay {
	t.Helper()
	cfg.Stream = b.stream
	r, err := New(slog.New(slog.NewTextHandler(io.Discard, nil)), b.pool, b.listen, b.rdb, cfg, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// addOutbox writes an outbox row and its notification inside tx, as api-conference does.
func addOutbox(t testing.TB, ctx context.Context, tx pgx.Tx, confID, version int64, typ changeevent.Type) int64 {
	t.Helper()
	id := addOutboxQuietly(t, ctx, tx, confID, version, typ)
	if _, err := tx.Exec(ctx, "SELECT pg_notify($1, '')", changeevent.NotifyChannel); err != nil {
		t.Fatal(err)
	}
	return id
}

// addOutboxQuietly writes an outbox row inside tx without a notification, as api-conference
// does with OUTBOX_NOTIFY=off.
func addOutboxQuietly(t testing.TB, ctx context.Context, tx pgx.Tx, confID, version int64, typ changeevent.Type) int64 {
	t.Helper()
	var payload any
	if typ != changeevent.Deleted {
		data, err := changeevent.MarshalData(changeevent.Conference{
			ID: confID, Href: changeevent.Href(confID), Name: fmt.Sprint("Conference ", confID),
			Starts: time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC), Ends: time.Date(2027, 3, 2, 9, 0, 0, 0, time.UTC), MaxAttendees: 10,
		})
		if err != nil {
			t.Fatal(err)
		}
		payload = string(data)
	}
	var id int64
	if err := tx.QueryRow(ctx, `INSERT INTO outbox (conference_id, type, version, payload) VALUES ($1, $2, $3, $4::jsonb) RETURNING id`,
		confID, string(typ), version, payload).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func commitEvent(t testing.TB, pool *pgxpool.Pool, confID, version int64, typ changeevent.Type) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	addOutbox(t, ctx, tx, confID, version, typ)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// published reads the stream back as "conference_id:version" strings, decoding each entry
// with the contract.
func published(t *testing.T, b bundle) []string {
	t.Helper()
	entries, err := b.rdb.XRange(context.Background(), b.stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		ev, err := changeevent.Decode(e.Values)
		if err != nil {
			t.Fatalf("entry %s does not decode: %v", e.ID, err)
		}
		out = append(out, fmt.Sprintf("%d:%d", ev.ConferenceID, ev.Version))
	}
	return out
}

func outboxCount(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM outbox").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRunOncePublishesInOrderAndEmptiesTheOutbox(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.relay(t, Config{BatchSize: 2})
	commitEvent(t, b.pool, 1, 1, changeevent.Created)
	commitEvent(t, b.pool, 1, 2, changeevent.Updated)
	commitEvent(t, b.pool, 2, 1, changeevent.Created)
	commitEvent(t, b.pool, 1, 3, changeevent.Deleted)
	ctx := context.Background()
	var handled []int
	for {
		n, err := r.runOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		handled = append(handled, n)
		if n == 0 {
			break
		}
	}
	if want := []int{2, 2, 0}; !slices.Equal(handled, want) {
		t.Errorf("batches %v, want %v", handled, want)
	}
	if got, want := published(t, b), []string{"1:1", "1:2", "2:1", "1:3"}; !slices.Equal(got, want) {
		t.Errorf("stream holds %v, want %v", got, want)
	}
	if n := outboxCount(t, b.pool); n != 0 {
		t.Errorf("%d rows left in the outbox", n)
	}
}

// Rows whose transactions commit in the reverse order of their ids are all published: nothing
// remembers a last id to skip past.
func TestOutOfOrderCommitsAreNotSkipped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.relay(t, Config{})
	ctx := context.Background()
	txs := make([]pgx.Tx, 4)
	for i := range txs {
		tx, err := b.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		addOutbox(t, ctx, tx, int64(i+1), 1, changeevent.Created)
		txs[i] = tx
	}
	for i := len(txs) - 1; i >= 0; i-- {
		if err := txs[i].Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := r.runOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := published(t, b)
	if want := []string{"4:1", "3:1", "2:1", "1:1"}; !slices.Equal(got, want) {
		t.Errorf("stream holds %v, want %v (in commit order, none skipped)", got, want)
	}
}

func TestRedisFailureKeepsTheRows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { dead.Close() })
	b.rdb = dead
	r := b.relay(t, Config{})
	commitEvent(t, b.pool, 1, 1, changeevent.Created)
	if _, err := r.runOnce(context.Background()); err == nil {
		t.Fatal("runOnce succeeded with Redis unreachable")
	}
	if n := outboxCount(t, b.pool); n != 1 {
		t.Errorf("%d rows in the outbox after a failed publish, want 1", n)
	}
}

// Two relays claim disjoint rows: between them every row is published, and while both run
// normally, none twice.
func TestTwoRelaysShareTheOutbox(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r1, r2 := b.relay(t, Config{BatchSize: 7}), b.relay(t, Config{BatchSize: 7})
	const n = 200
	for i := range n {
		commitEvent(t, b.pool, int64(i+1), 1, changeevent.Created)
	}
	var wg sync.WaitGroup
	var total atomic.Int64
	for _, r := range []*Relay{r1, r2} {
		wg.Go(func() {
			for {
				k, err := r.runOnce(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				if k == 0 {
					return
				}
				total.Add(int64(k))
			}
		})
	}
	wg.Wait()
	got := published(t, b)
	slices.Sort(got)
	if len(got) != n || len(slices.Compact(got)) != n || total.Load() != n {
		t.Errorf("%d entries (%d distinct), %d handled; want %d of each", len(got), len(slices.Compact(slices.Clone(got))), total.Load(), n)
	}
}

func TestInvalidRowIsDeadLetteredNotRetriedForever(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.relay(t, Config{})
	ctx := context.Background()
	// A payload whose id disagrees with its conference: the contract refuses it.
	if _, err := b.pool.Exec(ctx, `INSERT INTO outbox (conference_id, type, version, payload)
		VALUES (5, 'conference.updated', 2, '{"id": 6, "name": "x", "starts": "2027-01-01T00:00:00Z", "ends": "2027-01-02T00:00:00Z"}')`); err != nil {
		t.Fatal(err)
	}
	commitEvent(t, b.pool, 7, 1, changeevent.Created)
	if _, err := r.runOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := published(t, b); !slices.Equal(got, []string{"7:1"}) {
		t.Errorf("stream holds %v, want only the valid event", got)
	}
	dlq, err := b.rdb.XRange(ctx, redisconn.Keys(b.stream).DeadLetter, "-", "+").Result()
	if err != nil || len(dlq) != 1 {
		t.Fatalf("dead-letter stream: %v, %v", dlq, err)
	}
	if reason, _ := dlq[0].Values["dlq_reason"].(string); reason == "" {
		t.Errorf("dead letter has no reason: %v", dlq[0].Values)
	}
	if n := outboxCount(t, b.pool); n != 0 {
		t.Errorf("%d rows left in the outbox", n)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling against a deadline
	}
}

// With the sweep an hour away, only the notification can wake the relay.
func TestNotificationWakesTheRelay(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.relay(t, Config{Sweep: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	// Wait until the listener is connected, so that the notification below is not the one
	// a (re)connect would catch up on anyway.
	waitFor(t, "the LISTEN connection", func() bool {
		var n int
		_ = b.pool.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'").Scan(&n)
		return n > 0
	})
	for v := int64(1); v <= 3; v++ {
		commitEvent(t, b.pool, 9, v, changeevent.Updated)
		waitFor(t, fmt.Sprintf("version %d on the stream", v), func() bool { return len(published(t, b)) == int(v) })
	}
}

// Losing the epoch marker (what a restart without persistence or a flush does) triggers a
// reconcile; the first look of a process reconciles too.
func TestLostEpochTriggersReconcile(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var calls atomic.Int64
	r := b.relay(t, Config{EpochCheck: 20 * time.Millisecond, Reconcile: func(context.Context) error {
		calls.Add(1)
		return nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitFor(t, "the reconcile at start", func() bool { return calls.Load() >= 1 })
	waitFor(t, "the epoch marker", func() bool { return b.rdb.Exists(ctx, EpochKey(b.stream)).Val() == 1 })
	before := calls.Load()
	if err := b.rdb.Del(ctx, EpochKey(b.stream)).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a reconcile after the marker vanished", func() bool { return calls.Load() > before })
}

func TestReconcileFailureIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var calls atomic.Int64
	r := b.relay(t, Config{Reconcile: func(context.Context) error {
		if calls.Add(1) < 3 {
			return fmt.Errorf("api-attendee is not there yet")
		}
		return nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitFor(t, "the third reconcile attempt", func() bool { return calls.Load() >= 3 })
}

// A consumer group that fell so far behind that MAXLEN trimmed entries it never read has lost
// them; the relay notices and reconciles. A group that keeps up never triggers it.
func TestTrimmedUnreadEntriesTriggerReconcile(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := b.relay(t, Config{MaxLen: 1000, Reconcile: func(context.Context) error { return nil }})
	if err := b.rdb.XGroupCreateMkStream(ctx, b.stream, "behind", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.rdb.XGroupCreateMkStream(ctx, b.stream, "keeping-up", "0").Err(); err != nil {
		t.Fatal(err)
	}
	read := func(group string) {
		for {
			// NOACK, as a consumer that applied and acknowledged all it read: what is pending
			// is another check's (TestTruncatedStreamIsALoss).
			res, err := b.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c", Streams: []string{b.stream, ">"}, Count: 1000, Block: -1, NoAck: true}).Result()
			if err == redis.Nil || (err == nil && len(res[0].Messages) == 0) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	add := func(n int) {
		pipe := b.rdb.Pipeline()
		for i := range n {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: b.stream, MaxLen: 1000, Approx: true, Values: []string{"n", strconv.Itoa(i)}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	add(500)
	read("behind")
	read("keeping-up")
	if l, err := r.heal.findLoss(ctx); err != nil || l.cause != "" {
		t.Fatalf("both groups read everything: loss=%+v err=%v", l, err)
	}
	// Both groups fall behind, but only "keeping-up" catches up before the cap bites.
	add(900)
	read("keeping-up")
	if l, err := r.heal.findLoss(ctx); err != nil || l.cause != "" {
		t.Fatalf("nothing unread was trimmed yet: loss=%+v err=%v", l, err)
	}
	add(3000)
	read("keeping-up")
	if l, err := r.heal.findLoss(ctx); err != nil || l.cause != lossTrimmed {
		t.Fatalf("group behind lost entries to trimming, but loss=%+v err=%v", l, err)
	}
	read("behind")
	if l, err := r.heal.findLoss(ctx); err != nil || l.cause != "" {
		t.Fatalf("after it caught up: loss=%+v err=%v", l, err)
	}
}

// publishAll runs the relay until the outbox is empty.
func publishAll(t *testing.T, r *Relay) {
	t.Helper()
	for {
		n, err := r.runOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// The relay records the newest entry it published in the transaction that deletes the rows;
// a stream that later ends before it, or is gone, has lost what Redis accepted.
func TestStreamBehindThePublishedPositionIsALoss(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := b.relay(t, Config{BatchSize: 2})
	if l, err := r.heal.findLoss(ctx); err != nil || l.cause != "" {
		t.Fatalf("nothing published yet: loss=%+v err=%v", l, err)
	}
	for v := int64(1); v <= 5; v++ {
		commitEvent(t, b.pool, 1, v, changeevent.TypeFor(v, false))
	}
	publishAll(t, r)
	info, err := b.rdb.XInfoStream(ctx, b.stream).Result()
	if err != nil {
		t.Fatal(err)
	}
	var pos streamID
	if err := b.pool.QueryRow(ctx, changeevent.PublishedPositionSQL, b.stream).Scan(&pos.ms, &pos.seq); err != nil {
		t.Fatal(err)
	}
	if pos.String() != info.LastGeneratedID {
		t.Fatalf("recorded %s, the stream's newest entry is %s", pos, info.LastGeneratedID)
	}
	if l, err := r.heal.findLoss(ctx); err != nil || l.cause != "" {
		t.Fatalf("the stream holds everything: loss=%+v err=%v", l, err)
	}

	// Redis comes back without the newest two entries, as from an older snapshot: a stream
	// rebuilt from its first three entries, with its own last ID.
	entries, err := b.rdb.XRange(ctx, b.stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.rdb.Del(ctx, b.stream).Err(); err != nil {
		t.Fatal(err)
	}
	if l, err := r.heal.findLoss(ctx); err != nil || l.cause != lossBehind {
		t.Fatalf("the stream is gone: loss=%+v err=%v", l, err)
	}
	for _, e := range entries[:3] {
		if err := b.rdb.XAdd(ctx, &redis.XAddArgs{Stream: b.stream, ID: e.ID, Values: e.Values}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	l, err := r.heal.findLoss(ctx)
	if err != nil || l.cause != lossBehind {
		t.Fatalf("the stream ends at %s, before %s: loss=%+v err=%v", entries[2].ID, pos, l, err)
	}
	if !strings.Contains(l.detail, pos.String()) {
		t.Errorf("the detail %q does not name the recorded position", l.detail)
	}
	// Once the relay publishes past the position again, the stream agrees with the record.
	commitEvent(t, b.pool, 1, 6, changeevent.Updated)
	publishAll(t, r)
	if l, err := r.heal.findLoss(ctx); err != nil || l.cause != "" {
		t.Fatalf("after publishing again: loss=%+v err=%v", l, err)
	}
}

// A writer that truncates the stream (XADD … MAXLEN 0, which the relay's own Redis user may
// send) takes entries a group has not read, and deliveries it has not acknowledged.
func TestTruncatedStreamIsALoss(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		readFirst bool // the group reads (but does not ack) before the truncation
		want      string
	}{{"unread", false, lossTrimmed}, {"pending", true, lossPending}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			r := b.relay(t, Config{})
			if err := b.rdb.XGroupCreateMkStream(ctx, b.stream, "attendee", "0").Err(); err != nil {
				t.Fatal(err)
			}
			for v := int64(1); v <= 3; v++ {
				commitEvent(t, b.pool, 7, v, changeevent.TypeFor(v, false))
			}
			publishAll(t, r)
			if tc.readFirst {
				if err := b.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "attendee", Consumer: "c", Streams: []string{b.stream, ">"}, Count: 10, Block: -1}).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if l, err := r.heal.findLoss(ctx); err != nil || l.cause != "" {
				t.Fatalf("before the truncation: loss=%+v err=%v", l, err)
			}
			// go-redis reads MaxLen 0 as "no cap", so the command is spelt out.
			if err := b.rdb.Do(ctx, "XADD", b.stream, "MAXLEN", "0", "*", "x", "y").Err(); err != nil {
				t.Fatal(err)
			}
			if n := b.rdb.XLen(ctx, b.stream).Val(); n != 0 {
				t.Fatalf("XADD MAXLEN 0 left %d entries", n)
			}
			if l, err := r.heal.findLoss(ctx); err != nil || l.cause != tc.want {
				t.Fatalf("after the truncation: loss=%+v err=%v; want %s", l, err, tc.want)
			}
		})
	}
}

// A group that has been delivered entries past the stream's end was given what Redis no
// longer has: its state outlived the stream's (a group set by hand, or restored apart).
func TestGroupAheadOfTheStreamIsALoss(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := b.relay(t, Config{})
	commitEvent(t, b.pool, 3, 1, changeevent.Created)
	publishAll(t, r)
	if err := b.rdb.XGroupCreateMkStream(ctx, b.stream, "attendee", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.rdb.XGroupSetID(ctx, b.stream, "attendee", "99999999999999-0").Err(); err != nil {
		t.Fatal(err)
	}
	if l, err := r.heal.findLoss(ctx); err != nil || l.cause != lossGroupAhead {
		t.Fatalf("loss=%+v err=%v; want %s", l, err, lossGroupAhead)
	}
}

func TestIDBefore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		want bool
	}{{"0-0", "1-0", true}, {"5-9", "5-10", true}, {"10-0", "9-99", false}, {"7-1", "7-1", false}} {
		if got := idBefore(tc.a, tc.b); got != tc.want {
			t.Errorf("idBefore(%s, %s) = %v", tc.a, tc.b, got)
		}
	}
}

// Recovering from an outage longer than LongOutage reconciles: api-conference may have pruned
// outbox rows that were never published meanwhile.
func TestRecoveryFromLongOutageReconciles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A Redis that refuses connections until the test starts one on its port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b.rdb = redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { b.rdb.Close() })
	var calls atomic.Int64
	r := b.relay(t, Config{LongOutage: 300 * time.Millisecond, EpochCheck: time.Hour, Reconcile: func(context.Context) error {
		calls.Add(1)
		return nil
	}})
	commitEvent(t, b.pool, 1, 1, changeevent.Created)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitFor(t, "a few failed publishing rounds", func() bool { return testutilCounter(r.m.errors) >= 3 })
	before := calls.Load()
	srv := exec.Command("redis-server", "--port", strings.Split(addr, ":")[1], "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := srv.Start(); err != nil {
		unavailable(t, "redis-server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	waitFor(t, "the outbox to drain", func() bool { return outboxCount(t, b.pool) == 0 })
	waitFor(t, "a reconcile after the outage", func() bool { return calls.Load() > before })
}

func testutilCounter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
