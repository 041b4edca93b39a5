package relay

import (
	"context"
	"fmt"
	"time"

	"conferencego/syncer/backoff"
)

// Run publishes until ctx ends. It returns nil on cancellation.
//
// What wakes it depends on Poll. Off (zero), a LISTEN connection wakes it on every
// notification api-conference sends, with the sweep as the fallback. On, it reads the outbox
// every Poll while the outbox is empty and needs no notification at all: the writers then
// commit without NOTIFY's global lock. Either way a full batch is followed at once by the next.
func (r *Relay) Run(ctx context.Context) error {
	if r.cfg.Transport == TransportLogical {
		return r.runLogical(ctx)
	}
	if r.cfg.Poll == 0 {
		go r.listen(ctx)
	}
	go r.heal.run(ctx)
	sweep := time.NewTicker(r.cfg.Sweep)
	defer sweep.Stop()
	bo := backoff.New(100*time.Millisecond, 10*time.Second)
	var down outage
	busy := true // the first round catches up on whatever waited while nobody published
	for {
		n, err := r.round(ctx, busy)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			down.failed()
			r.m.errors.Inc()
			r.log.Warn("publishing the outbox failed; retrying", "err", err, "failing_for", down.length().Round(time.Second).String())
			if !bo.Wait(ctx) {
				return nil
			}
			continue
		}
		// api-conference prunes outbox rows older than its retention; after an outage that long
		// some events may never have been published at all.
		if outage := down.recovered(); outage >= r.cfg.LongOutage && r.cfg.Reconcile != nil {
			r.log.Warn("publishing works again after a long outage; reconciling in case old outbox rows were pruned", "outage", outage.Round(time.Second).String())
			r.heal.request()
		}
		bo.Reset()
		busy = n > 0
		if !r.pause(ctx, n, sweep.C) {
			return nil
		}
	}
}

// round is one turn of the loop: a claim, or in poll mode after an empty claim first a look
// whether anything waits. The look is one read-only statement outside any transaction, where
// an empty claim costs a transaction of four; it is what an idle poller does Poll after Poll.
func (r *Relay) round(ctx context.Context, busy bool) (int, error) {
	if r.cfg.Poll > 0 && !busy {
		r.m.polls.Inc()
		var waiting int64
		if err := r.pool.QueryRow(ctx, "SELECT outbox_backlog(1)").Scan(&waiting); err != nil {
			return 0, fmt.Errorf("look for outbox rows: %w", err)
		}
		if waiting == 0 {
			return 0, nil
		}
	}
	return r.runOnce(ctx)
}

// pause waits after a round that handled n rows until the next should start, and reports
// false when ctx ended first. After a full batch it does not wait: more may be waiting.
// Otherwise it waits for a notification or the sweep (LISTEN mode) or for Poll (poll mode),
// and, after a round that found rows, also until Linger has passed since that round: under
// load the next claim then finds more rows, and fewer claims carry the same events.
func (r *Relay) pause(ctx context.Context, n int, sweep <-chan time.Time) bool {
	if n == r.cfg.BatchSize {
		return true
	}
	var linger <-chan time.Time
	if n > 0 && r.cfg.Linger > 0 {
		linger = r.after(r.cfg.Linger)
	}
	wake, poll := r.wake, (<-chan time.Time)(nil)
	if r.cfg.Poll > 0 {
		wake, sweep, poll = nil, nil, r.after(r.cfg.Poll)
	}
	select {
	case <-ctx.Done():
		return false
	case <-wake:
	case <-sweep:
	case <-poll:
	}
	if linger == nil {
		return true
	}
	select {
	case <-ctx.Done():
		return false
	case <-linger:
		return true
	}
}
