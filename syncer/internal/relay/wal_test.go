package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"conferencego/syncer/changeevent"
	"conferencego/syncer/pgcluster"
	"conferencego/syncer/redisconn"
)

// TestMain removes the wal_level=logical cluster the logical transport's tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	pgcluster.RemoveShared()
	os.Exit(code)
}

// logicalSetup is setup on a cluster of the package's own with wal_level=logical (the shared
// server runs with replica): a conference database of the test's own, and a slot named for it.
func logicalSetup(t *testing.T) (bundle, string) {
	t.Helper()
	cluster, err := pgcluster.Shared("wal_level=logical", "max_wal_senders=20", "max_replication_slots=20")
	if errors.Is(err, pgcluster.ErrNoPostgres) {
		unavailable(t, "no cluster with wal_level=logical: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	pool, listen := newConferenceDBAt(t, cluster.AdminURL())
	rdb := newRedis(t)
	stream := "test.relay." + randomName()
	t.Cleanup(func() {
		rdb.Del(context.Background(), stream, redisconn.Keys(stream).DeadLetter, EpochKey(stream))
	})
	return bundle{pool: pool, listen: listen, rdb: rdb, stream: stream}, "s_" + randomName()
}

func (b bundle) logicalRelay(t *testing.T, slot string, cfg Config) *Relay {
	t.Helper()
	// ConnString is the URL the config was parsed from, the admin database's: name the test's.
	u, err := url.Parse(b.listen.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + b.listen.Database
	cfg.Transport, cfg.Slot, cfg.WALConnString = TransportLogical, slot, u.String()
	return b.relay(t, cfg)
}

// emitEvent commits a transaction that emits the event of conference id at version as
// api-conference's writes do with OUTBOX_TRANSPORT=logical (a delete carries no data).
func emitEvent(t *testing.T, pool *pgxpool.Pool, id, version int64, typ changeevent.Type) {
	t.Helper()
	emitRaw(t, pool, true, eventContent(t, id, version, typ))
}

func eventContent(t *testing.T, id, version int64, typ changeevent.Type) string {
	t.Helper()
	var data any
	if typ != changeevent.Deleted {
		b, err := changeevent.MarshalData(changeevent.Conference{
			ID: id, Href: changeevent.Href(id), Name: fmt.Sprint("Conference ", id),
			Starts: time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC), Ends: time.Date(2027, 3, 2, 9, 0, 0, 0, time.UTC), MaxAttendees: 10,
		})
		if err != nil {
			t.Fatal(err)
		}
		data = json.RawMessage(b)
	}
	b, err := json.Marshal(map[string]any{
		"event_id": fmt.Sprintf("00000000-0000-4000-8000-%012d", id*1000+version), "type": typ,
		"conference_id": id, "version": version, "occurred_at": time.Now(), "data": data,
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// emitRaw commits (or rolls back) a transaction emitting content with api-conference's prefix.
func emitRaw(t *testing.T, pool *pgxpool.Pool, commit bool, content string) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_logical_emit_message(true, $1, $2::text)", changeevent.MessagePrefix, content); err != nil {
		t.Fatal(err)
	}
	if commit {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// waitForSlot waits until a relay streams from slot.
func waitForSlot(t *testing.T, b bundle, slot string) {
	t.Helper()
	waitFor(t, "a relay on slot "+slot, func() bool {
		var n int
		// A slot being made is listed (and active) before it keeps anything: it has a
		// confirmed position once it does.
		_ = b.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_replication_slots
            WHERE slot_name = $1 AND active AND confirmed_flush_lsn IS NOT NULL`, slot).Scan(&n)
		return n == 1
	})
}

// walPosition is where the server's log is now.
func walPosition(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var lsn string
	if err := pool.QueryRow(context.Background(), "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	return lsn
}

// The logical transport publishes committed messages in commit order, never a rolled-back
// one; it dead-letters one that is not the contract's (with its position and content) and one
// written outside a transaction, records the newest entry as the table transport does, and
// confirms the slot past what it published.
func TestLogicalPublishesCommittedMessages(t *testing.T) {
	t.Parallel()
	b, slot := logicalSetup(t)
	r := b.logicalRelay(t, slot, Config{})
	runRelay(t, r)
	// The relay makes the slot: only what follows is kept for it.
	waitForSlot(t, b, slot)
	emitEvent(t, b.pool, 1, 1, changeevent.Created)
	emitRaw(t, b.pool, false, eventContent(t, 9, 1, changeevent.Created))
	emitEvent(t, b.pool, 1, 2, changeevent.Updated)
	emitRaw(t, b.pool, true, `{"event_id": "x", "type": "conference.created", "conference_id": `) // cut short
	if _, err := b.pool.Exec(context.Background(), "SELECT pg_logical_emit_message(false, $1, $2::text)",
		changeevent.MessagePrefix, eventContent(t, 8, 1, changeevent.Created)); err != nil { // outside a transaction
		t.Fatal(err)
	}
	emitEvent(t, b.pool, 2, 1, changeevent.Created)
	before := walPosition(t, b.pool)
	emitEvent(t, b.pool, 1, 3, changeevent.Deleted)
	want := []string{"1:1", "1:2", "2:1", "1:3"}
	waitFor(t, "four entries", func() bool { return len(published(t, b)) >= len(want) })
	if got := published(t, b); !slices.Equal(got, want) {
		t.Errorf("stream holds %v, want %v", got, want)
	}
	ctx := context.Background()
	dlq, err := b.rdb.XRange(ctx, redisconn.Keys(b.stream).DeadLetter, "-", "+").Result()
	if err != nil || len(dlq) != 2 {
		t.Fatalf("dead-letter stream: %v, %v; want the cut-short message and the one written outside a transaction", dlq, err)
	}
	if reason, _ := dlq[1].Values[changeevent.FieldDLQReason].(string); !strings.Contains(reason, "outside a transaction") {
		t.Errorf("second dead letter's reason %q: want it to say the message was written outside a transaction", reason)
	}
	if v := dlq[0].Values; v[changeevent.FieldDLQSource] != "wal" || v[changeevent.FieldDLQSourceID] == "" || v[changeevent.FieldDLQReason] == "" ||
		v[changeevent.FieldData] != `{"event_id": "x", "type": "conference.created", "conference_id": ` {
		t.Errorf("dead letter %v: want source wal, its position, a reason and the content as it came", v)
	}
	entries, err := b.rdb.XRange(ctx, b.stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	last, err := parseID(entries[len(entries)-1].ID)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the published position on record", func() bool {
		var ms, seq int64
		err := b.pool.QueryRow(ctx, changeevent.PublishedPositionSQL, b.stream).Scan(&ms, &seq)
		return err == nil && (streamID{ms, seq}) == last
	})
	// The last commit is confirmed: the slot's position is past where the log was before it,
	// so the WAL before it may go.
	waitFor(t, "the slot confirmed past the last message", func() bool {
		var past bool
		_ = b.pool.QueryRow(ctx, `SELECT confirmed_flush_lsn > $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1`, slot, before).Scan(&past)
		return past
	})
}

// Rows in the outbox table are published by a logical relay too: those left from before a
// switch of transport, and any an api-conference still on the table transport writes.
func TestLogicalRelaySweepsTheTable(t *testing.T) {
	t.Parallel()
	b, slot := logicalSetup(t)
	commitEvent(t, b.pool, 1, 1, changeevent.Created) // before the relay: left from the table transport
	r := b.logicalRelay(t, slot, Config{Sweep: 50 * time.Millisecond})
	runRelay(t, r)
	waitFor(t, "the left row", func() bool { return len(published(t, b)) == 1 })
	waitForSlot(t, b, slot) // a message is kept only by a slot that existed when it was written
	emitEvent(t, b.pool, 2, 1, changeevent.Created)
	commitEvent(t, b.pool, 3, 1, changeevent.Created) // a writer on the wrong transport
	waitFor(t, "both later events", func() bool { return len(published(t, b)) == 3 })
	got := published(t, b)
	slices.Sort(got)
	if want := []string{"1:1", "2:1", "3:1"}; !slices.Equal(got, want) {
		t.Errorf("stream holds %v, want %v", got, want)
	}
	if n := outboxCount(t, b.pool); n != 0 {
		t.Errorf("%d rows left in the outbox", n)
	}
}

// A slot has one reader: a second relay stands by, and takes over when the first stops,
// from what the first confirmed; nothing is lost between them.
func TestSecondLogicalRelayTakesOver(t *testing.T) {
	t.Parallel()
	b, slot := logicalSetup(t)
	first := b.logicalRelay(t, slot, Config{})
	ctx, stopFirst := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	waitForSlot(t, b, slot)
	second := b.logicalRelay(t, slot, Config{})
	runRelay(t, second)
	emitEvent(t, b.pool, 1, 1, changeevent.Created)
	waitFor(t, "the first event", func() bool { return len(published(t, b)) == 1 })
	stopFirst()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	emitEvent(t, b.pool, 1, 2, changeevent.Updated)
	emitEvent(t, b.pool, 2, 1, changeevent.Created)
	waitFor(t, "the events after the first relay stopped", func() bool { return len(published(t, b)) >= 3 })
	if got, want := published(t, b), []string{"1:1", "1:2", "2:1"}; !slices.Equal(got[len(got)-2:], want[1:]) || !slices.Contains(got, "1:1") {
		t.Errorf("stream holds %v, want %v (a redelivery of what was not confirmed may repeat)", got, want)
	}
}

func TestLogicalTransportIsValidated(t *testing.T) {
	for _, cfg := range []Config{
		{Transport: "wal"},
		{Transport: TransportLogical, Slot: "s"}, // no connection string
		{Transport: TransportLogical, Slot: "Bad-Slot", WALConnString: "postgres://x"},
		{Transport: TransportLogical, WALConnString: "postgres://x", Poll: time.Second},
	} {
		cfg.setDefaults()
		if err := cfg.Validate(); err == nil {
			t.Errorf("Validate accepted %+v", cfg)
		}
	}
}

// A slot the server invalidated (it kept more WAL than max_slot_wal_keep_size while its relay
// was away) is not read again and again in vain: the relay makes a new one, says so, asks for a
// reconcile (which repairs the copy from the source's rows), and publishes what follows.
func TestLostSlotIsMadeAnew(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, err := pgcluster.New(ctx, "wal_level=logical", "max_slot_wal_keep_size=1MB")
	if errors.Is(err, pgcluster.ErrNoPostgres) {
		unavailable(t, "no cluster of its own: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Remove)
	pool, listen := newConferenceDBAt(t, c.AdminURL())
	b := bundle{pool: pool, listen: listen, rdb: newRedis(t), stream: "test.relay." + randomName()}
	t.Cleanup(func() {
		b.rdb.Del(context.Background(), b.stream, redisconn.Keys(b.stream).DeadLetter, EpochKey(b.stream))
	})
	slot := "s_" + randomName()
	var reconciles atomic.Int64
	cfg := Config{Reconcile: func(context.Context) error { reconciles.Add(1); return nil }}

	first := b.logicalRelay(t, slot, cfg)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- first.Run(runCtx) }()
	waitForSlot(t, b, slot)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	emitEvent(t, b.pool, 1, 1, changeevent.Created) // kept by the slot, then given up with its WAL
	waitFor(t, "the server to invalidate the slot", func() bool {
		var status string
		if _, err := b.pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS wal_filler (x int); INSERT INTO wal_filler VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.pool.Exec(ctx, "SELECT pg_switch_wal()"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.pool.Exec(ctx, "CHECKPOINT"); err != nil {
			t.Fatal(err)
		}
		_ = b.pool.QueryRow(ctx, "SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&status)
		return status == "lost"
	})

	second := b.logicalRelay(t, slot, cfg)
	runRelay(t, second)
	waitForSlot(t, b, slot)
	emitEvent(t, b.pool, 2, 1, changeevent.Created)
	waitFor(t, "the event after the new slot", func() bool { return slices.Contains(published(t, b), "2:1") })
	if n := testutilCounter(second.m.slotsLost); n != 1 {
		t.Errorf("relay_slots_lost_total = %v; want 1", n)
	}
	waitFor(t, "a reconcile", func() bool { return reconciles.Load() >= 1 })
}
