package relay

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"conferencego/syncer/changeevent"
)

// The healer's runOnce, step by step: the first look asks for a reconcile, a look that finds
// nothing lost does not, and one that finds the epoch marker gone does.
func TestHealerRunOnceAsksForAReconcileWhenRedisLostItsData(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := b.relay(t, Config{Reconcile: func(context.Context) error { return nil }}).heal
	ctx := context.Background()
	asked := func() bool {
		select {
		case <-h.due:
			return true
		default:
			return false
		}
	}
	h.runOnce(ctx)
	if !asked() {
		t.Fatal("the first look asked for no reconcile")
	}
	h.runOnce(ctx)
	if asked() {
		t.Fatal("a look that found nothing lost asked for a reconcile")
	}
	if err := b.rdb.Del(ctx, EpochKey(b.stream)).Err(); err != nil {
		t.Fatal(err)
	}
	h.runOnce(ctx)
	if !asked() {
		t.Fatal("a look that found the epoch marker gone asked for no reconcile")
	}
}

// Without a reconcile, looking still sets the marker, and asks for nothing.
func TestHealerWithoutReconcileOnlyLooks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	h := b.relay(t, Config{}).heal
	ctx := context.Background()
	h.runOnce(ctx)
	if n := b.rdb.Exists(ctx, EpochKey(b.stream)).Val(); n != 1 {
		t.Fatalf("the epoch marker exists %d times after a look, want 1", n)
	}
	select {
	case <-h.due:
		t.Fatal("a healer without reconcile asked for one")
	default:
	}
}

// A stream that went back while writes go on: Redis restored from an older snapshot (epoch
// marker and all), and the relay's next batch added at once. Its entries get IDs past the
// recorded position, so every later look finds the stream whole; the publisher must see the
// loss before its XADDs, and report it. (Found by task chaos, seed 14.)
func TestALossIsSeenWhenTheNextBatchFollowsAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := b.relay(t, Config{BatchSize: 10, Reconcile: func(context.Context) error { return nil }})
	for v := int64(1); v <= 5; v++ {
		commitEvent(t, b.pool, 1, v, changeevent.TypeFor(v, false))
	}
	publishAll(t, r)
	entries, err := b.rdb.XRange(ctx, b.stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	// The older snapshot: the first three entries, the epoch marker untouched.
	if err := b.rdb.Del(ctx, b.stream).Err(); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries[:3] {
		if err := b.rdb.XAdd(ctx, &redis.XAddArgs{Stream: b.stream, ID: e.ID, Values: e.Values}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	commitEvent(t, b.pool, 1, 6, changeevent.Updated)
	publishAll(t, r)

	if l, err := r.heal.findLoss(ctx); err != nil || l.cause != "" {
		t.Fatalf("after the next batch a look sees nothing (the gap this test is about), or the test is wrong: loss=%+v err=%v", l, err)
	}
	if n := testutilCounter(r.m.losses.WithLabelValues(lossBehind)); n != 1 {
		t.Errorf("relay_redis_losses_total{cause=behind} = %v, want 1", n)
	}
	select {
	case <-r.heal.due:
	default:
		t.Error("the loss asked for no reconcile")
	}
	// The next batch finds the stream at its own last entry: nothing more to report.
	commitEvent(t, b.pool, 1, 7, changeevent.Updated)
	publishAll(t, r)
	if n := testutilCounter(r.m.losses.WithLabelValues(lossBehind)); n != 1 {
		t.Errorf("after the next batch relay_redis_losses_total{cause=behind} = %v, want still 1", n)
	}
}

// A stream that is gone when the next batch goes out (DEL, or a restart without persistence
// that kept the epoch marker somehow) is a loss too, and the batch still goes out.
func TestAGoneStreamIsSeenByTheNextBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	r := b.relay(t, Config{BatchSize: 10, Reconcile: func(context.Context) error { return nil }})
	commitEvent(t, b.pool, 1, 1, changeevent.Created)
	publishAll(t, r)
	if err := b.rdb.Del(ctx, b.stream).Err(); err != nil {
		t.Fatal(err)
	}
	commitEvent(t, b.pool, 1, 2, changeevent.Updated)
	publishAll(t, r)
	if got := published(t, b); len(got) != 1 || got[0] != "1:2" {
		t.Errorf("the stream holds %v, want the new batch [1:2]", got)
	}
	if n := testutilCounter(r.m.losses.WithLabelValues(lossBehind)); n != 1 {
		t.Errorf("relay_redis_losses_total{cause=behind} = %v, want 1", n)
	}
}
