package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"conferencego/syncer/backoff"
	"conferencego/syncer/changeevent"
	"conferencego/syncer/internal/walmsg"
)

// Transports of the relay (SYNC_OUTBOX_TRANSPORT), as api-conference's OUTBOX_TRANSPORT writes.
const (
	// TransportTable claims and deletes outbox rows.
	TransportTable = "table"
	// TransportLogical reads api-conference's logical-decoding messages from a replication
	// slot, in commit order, and confirms the slot's position once Redis holds them.
	TransportLogical = "logical"
)

// standbyRetry is how often a relay standing by tries the slot another relay reads.
const standbyRetry = time.Second

// recordPublishedSQL records the newest entry published, as the table transport does in the
// transaction that deletes the rows: its own transaction here, before the slot is confirmed, so
// that the record is never behind what the slot forgot. Its commit need not wait for the disk:
// a record lost in a crash is older, never newer, than what the stream holds.
const recordPublishedSQL = `SELECT set_config('synchronous_commit', 'off', true), record_published($1, $2, $3)`

// runLogical is Run for TransportLogical: it streams the slot until ctx ends, and reopens it
// with backoff when anything fails (what was not confirmed is read again). Beside it, the
// outbox table is swept every Sweep: rows there were written by an api-conference on the table
// transport (before a switch, or by mistake) and would otherwise wait forever.
func (r *Relay) runLogical(ctx context.Context) error {
	go r.heal.run(ctx)
	go r.sweepTable(ctx)
	bo := backoff.New(100*time.Millisecond, 10*time.Second)
	var down outage
	standby := false
	for {
		err := r.streamSlot(ctx, &down, bo)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, walmsg.ErrSlotInUse):
			// Another relay reads the slot: this one stands by until it goes, looking every
			// standbyRetry, so that it takes over within that (not after a backoff grown long).
			if !standby {
				r.log.Info("another relay reads the replication slot; standing by", "slot", r.cfg.Slot)
				standby = true
			}
			bo.Reset()
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(standbyRetry):
			}
			continue
		default:
			standby = false
			down.failed()
			r.m.errors.Inc()
			r.log.Warn("reading the replication slot failed; reopening it", "err", err, "slot", r.cfg.Slot, "failing_for", down.length().Round(time.Second).String())
		}
		if !bo.Wait(ctx) {
			return nil
		}
	}
}

// streamSlot opens the slot and publishes what it reads until something fails.
func (r *Relay) streamSlot(ctx context.Context, down *outage, bo *backoff.Backoff) error {
	cfg := walmsg.Config{ConnString: r.cfg.WALConnString, Slot: r.cfg.Slot, Publication: r.cfg.Slot, Prefix: changeevent.MessagePrefix}
	rd, err := walmsg.Open(ctx, cfg)
	if errors.Is(err, walmsg.ErrSlotLost) {
		// The server gave up the slot's WAL (max_slot_wal_keep_size): the events in it will never
		// be read. Start a new slot and reconcile, which brings api-attendee level from the
		// source's rows; readers of the stream itself miss what the lost WAL held.
		r.m.slotsLost.Inc()
		r.log.Error("the replication slot was invalidated, and the events it kept are gone; making a new slot and reconciling", "slot", r.cfg.Slot, "err", err)
		if err := walmsg.Drop(ctx, cfg); err != nil {
			return err
		}
		if rd, err = walmsg.Open(ctx, cfg); err != nil {
			return err
		}
		r.heal.request()
	}
	if err != nil {
		return err
	}
	defer rd.Close(context.WithoutCancel(ctx))
	for {
		b, err := rd.Read(ctx, r.cfg.BatchSize, r.cfg.Linger)
		if err != nil {
			return err
		}
		if err := r.publishMessages(ctx, rd, b); err != nil {
			return err
		}
		bo.Reset()
		if down.recovered() >= r.cfg.LongOutage && r.cfg.Reconcile != nil {
			r.log.Warn("publishing works again after a long outage; reconciling in case the slot was behind", "slot", r.cfg.Slot)
			r.heal.request()
		}
	}
}

// publishMessages publishes one batch of messages, records the newest entry and then confirms
// the batch: a crash before the confirm reads the batch again (consumers absorb the duplicates).
func (r *Relay) publishMessages(ctx context.Context, rd *walmsg.Reader, b walmsg.Batch) error {
	rows := make([]changeevent.OutboxRow, len(b.Messages))
	var refused map[int]error
	for i, m := range b.Messages {
		o, err := changeevent.MessageRow(m.Content, int64(m.LSN))
		if m.Refused != nil {
			err = fmt.Errorf("%w: %w", changeevent.ErrMalformed, m.Refused)
		}
		if err != nil {
			if refused == nil {
				refused = map[int]error{}
			}
			refused[i], o.Payload = err, m.Content
		}
		rows[i] = o
	}
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	out, err := r.publish(ctx, rows, refused)
	if err != nil {
		return err
	}
	if out.last != nil {
		if _, err := r.pool.Exec(ctx, recordPublishedSQL, r.cfg.Stream, out.last.ms, out.last.seq); err != nil {
			return fmt.Errorf("record the published position: %w", err)
		}
	}
	if err := rd.Confirm(ctx, b.End); err != nil {
		return err
	}
	r.done(out)
	return nil
}

// sweepTable publishes whatever the outbox table holds, at start and every Sweep, and says so
// when it finds rows after the start: some api-conference writes to the table.
func (r *Relay) sweepTable(ctx context.Context) {
	tick := time.NewTicker(r.cfg.Sweep)
	defer tick.Stop()
	for first := true; ; first = false {
		n, err := r.drainTable(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.m.errors.Inc()
			r.log.Warn("publishing the outbox table failed; trying again at the next sweep", "err", err)
		case n > 0 && !first:
			r.log.Warn("published outbox rows although the transport is logical: is an api-conference running with OUTBOX_TRANSPORT=table?", "rows", n)
		case n > 0:
			r.log.Info("published the outbox rows left from the table transport", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// drainTable claims outbox rows until a claim finds less than a batch.
func (r *Relay) drainTable(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := r.runOnce(ctx)
		total += n
		if err != nil || n < r.cfg.BatchSize {
			return total, err
		}
	}
}

// outage measures how long publishing has been failing.
type outage struct{ since time.Time }

func (o *outage) failed() {
	if o.since.IsZero() {
		o.since = time.Now()
	}
}

// length is how long publishing has been failing (0 if it works).
func (o *outage) length() time.Duration {
	if o.since.IsZero() {
		return 0
	}
	return time.Since(o.since)
}

// recovered ends the outage and returns how long it lasted.
func (o *outage) recovered() time.Duration {
	d := o.length()
	o.since = time.Time{}
	return d
}
