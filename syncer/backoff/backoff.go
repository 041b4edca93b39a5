// Package backoff spaces out retries: exponential growth with a cap, jittered so that many
// processes that failed together do not retry together.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the delay state of one retry loop. The zero value is not usable; use New.
type Backoff struct {
	min, max time.Duration
	next     time.Duration
}

// New returns a Backoff that starts at min and doubles up to max.
func New(min, max time.Duration) *Backoff {
	return &Backoff{min: min, max: max, next: min}
}

// Next returns the delay before the next retry: uniformly in the upper half of the current
// step, then doubles the step.
func (b *Backoff) Next() time.Duration {
	d := b.next
	b.next = min(2*b.next, b.max)
	half := d / 2
	return half + rand.N(half+1)
}

// Reset starts over after a success.
func (b *Backoff) Reset() { b.next = b.min }

// Wait sleeps for Next() or until ctx ends, and reports whether it slept the whole time.
func (b *Backoff) Wait(ctx context.Context) bool {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Retry runs try until it succeeds, waiting between failures, and reports true; it reports
// false once ctx ends. failed, if not nil, hears each failure (to log or count it). A success
// resets b, so that the next failure starts again from the shortest wait.
func (b *Backoff) Retry(ctx context.Context, try func(context.Context) error, failed func(error)) bool {
	for {
		err := try(ctx)
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			b.Reset()
			return true
		}
		if failed != nil {
			failed(err)
		}
		if !b.Wait(ctx) {
			return false
		}
	}
}
