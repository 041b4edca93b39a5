package relay

import (
	"context"
	"testing"
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
