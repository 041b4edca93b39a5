package backoff_test

import (
	"context"
	"testing"
	"time"

	"conferencego/syncer/backoff"
)

func TestNextGrowsWithinBoundsAndResets(t *testing.T) {
	t.Parallel()
	b := backoff.New(100*time.Millisecond, time.Second)
	steps := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := 0; i < 200; i++ {
		b.Reset()
		for j, step := range steps {
			step *= time.Millisecond
			if d := b.Next(); d < step/2 || d > step {
				t.Fatalf("round %d, retry %d: delay %v outside [%v, %v]", i, j, d, step/2, step)
			}
		}
	}
}

func TestWaitStopsOnCancel(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if backoff.New(time.Hour, time.Hour).Wait(ctx) {
		t.Error("Wait slept through a cancelled context")
	}
	if !backoff.New(time.Millisecond, time.Millisecond).Wait(context.Background()) {
		t.Error("Wait gave up without a cancel")
	}
}
