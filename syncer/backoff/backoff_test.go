package backoff_test

import (
	"context"
	"errors"
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

func TestRetry(t *testing.T) {
	t.Parallel()
	b := backoff.New(time.Microsecond, time.Microsecond)
	var tries int
	var heard []error
	ok := b.Retry(context.Background(), func(context.Context) error {
		tries++
		if tries < 3 {
			return errors.New("not yet")
		}
		return nil
	}, func(err error) { heard = append(heard, err) })
	if !ok || tries != 3 || len(heard) != 2 {
		t.Errorf("Retry = %v after %d tries, %d failures heard; want true after 3, 2 heard", ok, tries, len(heard))
	}

	// A try that ends the context: Retry gives up at once, without calling failed.
	ctx, cancel := context.WithCancel(context.Background())
	heard = nil
	ok = b.Retry(ctx, func(context.Context) error { cancel(); return errors.New("stopping") }, func(err error) { heard = append(heard, err) })
	if ok || len(heard) != 0 {
		t.Errorf("Retry with its context ended = %v, %d failures heard; want false, none", ok, len(heard))
	}
}
