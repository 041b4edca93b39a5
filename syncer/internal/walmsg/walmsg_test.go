package walmsg_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"conferencego/syncer/internal/walmsg"
	"conferencego/syncer/pgcluster"
)

const prefix = "conferencego.test"

// logicalCluster is one cluster with wal_level=logical for the package's tests (each test has
// a database of its own on it); the shared server runs with replica.
func logicalCluster(t *testing.T) *pgcluster.Cluster {
	t.Helper()
	c, err := pgcluster.Shared("wal_level=logical", "max_wal_senders=20", "max_replication_slots=20")
	if errors.Is(err, pgcluster.ErrNoPostgres) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMain(m *testing.M) {
	code := m.Run()
	pgcluster.RemoveShared()
	os.Exit(code)
}

var serial atomic.Int64

// database makes a database of the test's own on c and returns its name (also the name of
// the test's slot), its URL and a connection.
func database(t *testing.T, c *pgcluster.Cluster, base string) (string, string, *pgx.Conn) {
	t.Helper()
	name := fmt.Sprintf("%s_%d", base, serial.Add(1))
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, c.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", hostPort(t, c.AdminURL()), name)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return name, url, conn
}

func hostPort(t *testing.T, url string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
}

// reader gives the test a database and a slot of its own (named from base), a connection to
// write with and a reader of the slot, closed when the test ends.
func reader(t *testing.T, base string) (slot, url string, conn *pgx.Conn, r *walmsg.Reader) {
	t.Helper()
	t.Parallel()
	slot, url, conn = database(t, logicalCluster(t), base)
	r = open(t, url, slot)
	t.Cleanup(func() { r.Close(context.Background()) })
	return slot, url, conn, r
}

func open(t *testing.T, url, slot string) *walmsg.Reader {
	t.Helper()
	return openWith(t, url, slot, 100*time.Millisecond)
}

// openWith opens a reader that sends its position every status interval when idle.
func openWith(t *testing.T, url, slot string, status time.Duration) *walmsg.Reader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := walmsg.Open(ctx, walmsg.Config{ConnString: url, Slot: slot, Publication: "conferencego", Prefix: prefix, StatusInterval: status})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// emit commits a transaction that emits each content as a message of prefix p.
func emit(t *testing.T, conn *pgx.Conn, p string, contents ...string) {
	t.Helper()
	ctx := context.Background()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range contents {
		if _, err := tx.Exec(ctx, "SELECT pg_logical_emit_message(true, $1, $2)", p, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// readN reads batches until n messages came, and returns their contents and the last End.
func readN(t *testing.T, r *walmsg.Reader, n int) ([]string, pglogrepl.LSN) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	var end pglogrepl.LSN
	for len(got) < n {
		b, err := r.Read(ctx, 100, 0)
		if err != nil {
			t.Fatalf("read after %q: %v", got, err)
		}
		if b.End <= end {
			t.Errorf("a batch's end %s is not after the one before, %s", b.End, end)
		}
		end = b.End
		for _, m := range b.Messages {
			got = append(got, string(m.Content))
		}
	}
	return got, end
}

// TestCommittedMessagesInCommitOrder: the caller's messages of committed transactions, in
// the order the transactions committed; nothing of a rollback, of another prefix, or of a
// transaction with no message.
func TestCommittedMessagesInCommitOrder(t *testing.T) {
	_, url, conn, r := reader(t, "order")
	ctx := context.Background()

	emit(t, conn, prefix, "a1", "a2")
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_logical_emit_message(true, $1, 'rolled back')", prefix); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	emit(t, conn, "someone.else", "not ours")
	if _, err := conn.Exec(ctx, "CREATE TABLE t (n int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	// Two transactions that overlap: the second to begin commits first, and comes first.
	other, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	late, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := late.Exec(ctx, "SELECT pg_logical_emit_message(true, $1, 'committed last')", prefix); err != nil {
		t.Fatal(err)
	}
	emit(t, conn, prefix, "b")
	if err := late.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	got, _ := readN(t, r, 4)
	if want := []string{"a1", "a2", "b", "committed last"}; !slices.Equal(got, want) {
		t.Errorf("read %q; want %q", got, want)
	}
}

// TestUnconfirmedComeAgain: a reader whose connection is killed before it confirmed leaves
// its messages to the next reader; once confirmed, they do not come again.
func TestUnconfirmedComeAgain(t *testing.T) {
	t.Parallel()
	c := logicalCluster(t)
	slot, url, conn := database(t, c, "again")
	ctx := context.Background()
	r := open(t, url, slot)
	emit(t, conn, prefix, "1")
	emit(t, conn, prefix, "2")
	if got, _ := readN(t, r, 2); !slices.Equal(got, []string{"1", "2"}) {
		t.Fatalf("first read %q", got)
	}
	// The server ends the reader's connection, as a crash of the relay would leave it.
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1", slot); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if _, err := r.Read(rctx, 100, 0); err == nil {
		t.Error("Read on a terminated connection returned no error")
	}
	cancel()
	r.Close(ctx)

	r = openWhenFree(t, url, slot)
	got, end := readN(t, r, 2)
	if !slices.Equal(got, []string{"1", "2"}) {
		t.Fatalf("after the kill the next reader read %q; want both unconfirmed messages again", got)
	}
	if err := r.Confirm(ctx, end); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, slot, end)
	r.Close(ctx)

	r = openWhenFree(t, url, slot)
	defer r.Close(ctx)
	emit(t, conn, prefix, "3")
	if got, _ := readN(t, r, 1); !slices.Equal(got, []string{"3"}) {
		t.Errorf("after confirming, the next reader read %q first; want only the new message", got)
	}
}

// openWhenFree opens the slot once the server has let go of the last reader's connection
// (a slot has one reader at a time; the walsender of a closed connection ends a little later).
func openWhenFree(t *testing.T, url, slot string) *walmsg.Reader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for {
		var active bool
		if err := conn.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&active); err != nil {
			t.Fatal(err)
		}
		if !active {
			return open(t, url, slot)
		}
		if _, err := conn.Exec(ctx, "SELECT pg_sleep(0.02)"); err != nil { // poll the server's state
			t.Fatalf("slot %s still has a reader: %v", slot, err)
		}
	}
}

// waitConfirmed waits until the server's slot says it was confirmed at end or later.
func waitConfirmed(t *testing.T, conn *pgx.Conn, slot string, end pglogrepl.LSN) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		var at pglogrepl.LSN
		if err := conn.QueryRow(ctx, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&at); err != nil {
			t.Fatal(err)
		}
		if at >= end {
			return
		}
		if _, err := conn.Exec(ctx, "SELECT pg_sleep(0.02)"); err != nil {
			t.Fatalf("slot %s confirmed at %s, not %s: %v", slot, at, end, err)
		}
	}
}

// TestQuietSlotHoldsNoWAL: transactions with none of the caller's messages are confirmed on
// its behalf once it is level, so the slot does not keep their WAL.
func TestQuietSlotHoldsNoWAL(t *testing.T) {
	slot, _, conn, r := reader(t, "quiet")
	ctx := context.Background()
	emit(t, conn, prefix, "only")
	_, end := readN(t, r, 1)
	if err := r.Confirm(ctx, end); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t AS SELECT generate_series(1, 1000) AS n"); err != nil {
		t.Fatal(err)
	}
	var after pglogrepl.LSN
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()").Scan(&after); err != nil {
		t.Fatal(err)
	}
	// Read runs the reader's idle step each status interval; it returns at the next message.
	done := make(chan error, 1)
	go func() {
		_, err := readN2(r)
		done <- err
	}()
	waitConfirmed(t, conn, slot, after-1)
	emit(t, conn, prefix, "wake")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func readN2(r *walmsg.Reader) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := r.Read(ctx, 100, 0)
	if err != nil {
		return nil, err
	}
	if len(b.Messages) != 1 || string(b.Messages[0].Content) != "wake" {
		return nil, fmt.Errorf("read %d messages; want only the one that woke it", len(b.Messages))
	}
	return nil, nil
}

// TestLingerGathersABurst: with a linger, transactions that commit close together come in
// one batch; without, each commit ends a batch.
func TestLingerGathersABurst(t *testing.T) {
	_, url, conn, r := reader(t, "linger")
	ctx := context.Background()
	for i := range 5 {
		emit(t, conn, prefix, fmt.Sprint(i))
	}
	// All five are committed before the reads: one read with a long linger takes them all,
	// stopping at max rather than at the linger.
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, err := r.Read(rctx, 5, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Messages) != 5 {
		t.Errorf("a lingering read of a burst of 5 returned %d messages; want all 5", len(b.Messages))
	}
	// Without a linger a read returns what has arrived and does not wait for more: not for a
	// transaction still open (its message is in the log, its commit is not), nor for the one
	// that commits after the read returned.
	pending, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer pending.Rollback(ctx)
	if _, err := pending.Exec(ctx, "SELECT pg_logical_emit_message(true, $1, 'open')", prefix); err != nil {
		t.Fatal(err)
	}
	other, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	emit(t, other, prefix, "a")
	b, err = r.Read(rctx, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := contents(b); !slices.Equal(got, []string{"a"}) {
		t.Errorf("a read without linger returned %q; want only the committed message", got)
	}
	if err := pending.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if b, err = r.Read(rctx, 100, 0); err != nil {
		t.Fatal(err)
	}
	if got := contents(b); !slices.Equal(got, []string{"open"}) {
		t.Errorf("the next read returned %q; want the message of the transaction that committed since", got)
	}
}

func contents(b walmsg.Batch) []string {
	var out []string
	for _, m := range b.Messages {
		out = append(out, string(m.Content))
	}
	return out
}

// TestRefusals: a message written outside a transaction, which would stand even if its writer
// rolled back, is handed out refused; bad settings are refused, and so is a slot already read.
func TestRefusals(t *testing.T) {
	slot, url, conn, r := reader(t, "refuse")
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "SELECT pg_logical_emit_message(false, $1, 'outside')", prefix); err != nil {
		t.Fatal(err)
	}
	emit(t, conn, prefix, "after")
	// The message written outside a transaction is handed out refused, not as an event and not
	// as an error that would stop the reader at it forever; what follows comes after it.
	var got []walmsg.Message
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for len(got) < 2 {
		b, err := r.Read(rctx, 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b.Messages...)
	}
	if len(got) != 2 || string(got[0].Content) != "outside" || !errors.Is(got[0].Refused, walmsg.ErrNonTransactional) ||
		string(got[1].Content) != "after" || got[1].Refused != nil {
		t.Errorf("read %+v; want the outside message refused, then the next one", got)
	}
	for _, cfg := range []walmsg.Config{
		{ConnString: url, Slot: "Bad-Name", Publication: "p", Prefix: prefix},
		{ConnString: url, Slot: "s", Publication: "p"},
	} {
		if _, err := walmsg.Open(ctx, cfg); err == nil {
			t.Errorf("Open(%+v) accepted it", cfg)
		}
	}
	// A slot has one reader at a time: a second is told so, and may wait.
	second, err := walmsg.Open(ctx, walmsg.Config{ConnString: url, Slot: slot, Publication: "conferencego", Prefix: prefix})
	if !errors.Is(err, walmsg.ErrSlotInUse) {
		t.Errorf("a second reader of slot %s got %v; want ErrSlotInUse", slot, err)
	}
	if second != nil {
		second.Close(ctx)
	}
}

// TestFastShutdownIsNotHeldUp: a server stopping with pg_ctl -m fast waits until each logical
// reader has confirmed exactly what its walsender sent, asking again and again. A reader whose
// caller confirmed all it was given answers with the position past the transactions that held
// nothing of its own, and goes on doing so after it once did (it stopped after the first time,
// and the server then waited forever: TestPostgresRestart/push-logical hung in pg_ctl stop).
func TestFastShutdownIsNotHeldUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, err := pgcluster.New(ctx, "wal_level=logical")
	if errors.Is(err, pgcluster.ErrNoPostgres) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Remove()
	slot, url, conn := database(t, c, "shutdown")
	r := open(t, url, slot) // idle status every 100 ms
	defer r.Close(ctx)
	emit(t, conn, prefix, "one")
	got, end := readN(t, r, 1)
	if !slices.Equal(got, []string{"one"}) {
		t.Fatalf("read %v", got)
	}
	if err := r.Confirm(ctx, end); err != nil {
		t.Fatal(err)
	}
	reading := make(chan error, 1)
	go func() { // as the relay does: keep reading, and so answering the server
		_, err := r.Read(ctx, 100, 0)
		reading <- err
	}()
	// Transactions without a message of ours: the reader confirms past them on its own...
	if _, err := conn.Exec(ctx, "CREATE TABLE unrelated (x int); INSERT INTO unrelated VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, conn, slot, end+1)
	// ...and past the next ones too, which is what the shutdown needs.
	if _, err := conn.Exec(ctx, "INSERT INTO unrelated VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	stopCtx, cancel := context.WithTimeout(ctx, 50*time.Second)
	defer cancel()
	if err := c.Stop(stopCtx, "fast"); err != nil {
		t.Fatalf("pg_ctl stop -m fast with a reader connected: %v", err)
	}
	if err := <-reading; err == nil {
		t.Error("Read returned no error from a server that stopped")
	}
}
