package relay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"conferencego/syncer/changeevent"
)

// runRelay runs r until the test ends.
func runRelay(t *testing.T, r *Relay) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func waitForListener(t *testing.T, b bundle) {
	t.Helper()
	waitFor(t, "the LISTEN connection", func() bool {
		var n int
		_ = b.pool.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'").Scan(&n)
		return n > 0
	})
}

// A polling relay publishes rows committed without any notification, and opens no LISTEN
// connection: it is built without the settings for one. While the outbox is empty it only
// looks (one statement per Poll) and claims nothing.
func TestPollingPublishesWithoutNotifications(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r, err := New(slog.New(slog.NewTextHandler(io.Discard, nil)), b.pool, nil, b.rdb,
		Config{Stream: b.stream, Poll: 2 * time.Millisecond, Sweep: time.Hour}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, r)
	ctx := context.Background()
	for v := int64(1); v <= 3; v++ {
		tx, err := b.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		addOutboxQuietly(t, ctx, tx, 4, v, changeevent.Updated)
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("version %d on the stream", v), func() bool { return len(published(t, b)) == int(v) })
	}
	waitFor(t, "the outbox to empty", func() bool { return outboxCount(t, b.pool) == 0 })
	// After the last row's claim comes one claim that finds nothing, then only polls: a poll
	// seen from here on follows that claim.
	first := testutilCounter(r.m.polls)
	waitFor(t, "a poll", func() bool { return testutilCounter(r.m.polls) > first })
	claims := testutilCounter(r.m.claims)
	polls := testutilCounter(r.m.polls)
	waitFor(t, "ten more polls", func() bool { return testutilCounter(r.m.polls) >= polls+10 })
	if got := testutilCounter(r.m.claims); got != claims {
		t.Errorf("an idle polling relay claimed %v times during ten polls; want no claim", got-claims)
	}
	if got := testutilCounter(r.m.listenerReconnects); got != 0 {
		t.Errorf("a polling relay tried to listen: %v listener reconnects", got)
	}
}

// heldLinger replaces a relay's timers: the first linger stays open until release; every
// other timer runs as usual.
type heldLinger struct {
	linger time.Duration
	mu     sync.Mutex
	held   chan time.Time
	calls  int
}

func (h *heldLinger) after(d time.Duration) <-chan time.Time {
	if d != h.linger {
		return time.After(d)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if h.calls == 1 {
		return h.held
	}
	ch := make(chan time.Time)
	close(ch)
	return ch
}

// With a linger, rows committed while the relay lingers after a busy claim go out together in
// the next claim: a burst of three after the first row is one batch, not three.
func TestLingerGathersABurstIntoOneBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.relay(t, Config{Sweep: time.Hour, Linger: time.Second})
	h := &heldLinger{linger: time.Second, held: make(chan time.Time)}
	r.after = h.after
	runRelay(t, r)
	waitForListener(t, b)
	commitEvent(t, b.pool, 5, 1, changeevent.Updated)
	waitFor(t, "the first row on the stream", func() bool { return len(published(t, b)) == 1 })
	if got := testutilCounter(r.m.batches); got != 1 {
		t.Fatalf("%v batches for the first row, want 1", got)
	}
	// The relay is busy now, so it lingers before its next claim, however many rows notify.
	for v := int64(2); v <= 4; v++ {
		commitEvent(t, b.pool, 5, v, changeevent.Updated)
	}
	close(h.held)
	waitFor(t, "the burst on the stream", func() bool { return len(published(t, b)) == 4 })
	if got := testutilCounter(r.m.batches); got != 2 {
		t.Errorf("the burst of three went out in %v batches after the first, want 1", got-1)
	}
	if got := published(t, b); fmt.Sprint(got) != "[5:1 5:2 5:3 5:4]" {
		t.Errorf("published %v", got)
	}
}

// Without a linger the relay asks for no timer between claims: it claims as soon as a
// notification wakes it, as it always did.
func TestNoLingerMeansNoWait(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.relay(t, Config{Sweep: time.Hour})
	r.after = func(d time.Duration) <-chan time.Time {
		t.Errorf("the relay asked for a %s timer with neither linger nor polling", d)
		return time.After(d)
	}
	runRelay(t, r)
	waitForListener(t, b)
	for v := int64(1); v <= 3; v++ {
		commitEvent(t, b.pool, 6, v, changeevent.Updated)
		waitFor(t, fmt.Sprintf("version %d on the stream", v), func() bool { return len(published(t, b)) == int(v) })
	}
}

func TestPollAndLingerAreValidated(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{{Poll: time.Microsecond}, {Poll: time.Hour}, {Linger: -time.Millisecond}, {Linger: 2 * time.Second}} {
		cfg.setDefaults()
		if err := cfg.Validate(); err == nil {
			t.Errorf("poll %s, linger %s accepted", cfg.Poll, cfg.Linger)
		}
	}
	cfg := Config{Poll: time.Millisecond, Linger: 500 * time.Microsecond}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		t.Errorf("poll 1ms, linger 500µs refused: %v", err)
	}
}
