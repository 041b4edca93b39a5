package redisstream

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/redis/go-redis/v9"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/syncer/changeevent"
	"conferencego/syncer/redisconn"
)

// deadLetter is an entry to move to the dead-letter stream, and why.
type deadLetter struct {
	msg        redis.XMessage
	reason     string
	deliveries int64
}

// entry is an entry that triage lets through to the store, with its checked change.
type entry struct {
	msg        redis.XMessage
	change     attendee.Change
	deliveries int64
}

// triage decides, from the entries of one round alone, which to apply and which to
// dead-letter: an entry delivered more than maxDeliveries times has had its chances, and one
// that does not decode, or that the copy cannot store, never will. It touches neither Redis
// nor the database.
//
// This is the stream's trust boundary: each entry is decoded and checked here, once
// (attendee.DecodeChange), and what goes on to the store is an attendee.Change, which the
// store does not check again.
func triage(msgs []redis.XMessage, deliveries map[string]int64, maxDeliveries int64) (apply []entry, dead []deadLetter) {
	for _, m := range msgs {
		n := deliveries[m.ID]
		if n > maxDeliveries {
			dead = append(dead, deadLetter{m, fmt.Sprintf("not applied after %d deliveries", n-1), n})
			continue
		}
		ch, err := attendee.DecodeChange(m.Values)
		if err != nil {
			dead = append(dead, deadLetter{m, err.Error(), n})
			continue
		}
		apply = append(apply, entry{msg: m, change: ch, deliveries: n})
	}
	return apply, dead
}

// outcome is what becomes of an entry once the store has answered for it.
type outcome int

const (
	ack   outcome = iota // applied (or no newer than the copy): ack it
	bury                 // refused by the store as invalid: retrying cannot help
	leave                // failed for another reason: leave it pending, to retry
)

// settle decides an entry's outcome from the store's answer for it.
func settle(err error) outcome {
	switch {
	case err == nil:
		return ack
	case errors.Is(err, attendee.ErrInvalid):
		return bury
	}
	return leave
}

// applied is what the apply step did with the entries triage let through.
type applied struct {
	acked   []string
	dead    []deadLetter
	failed  int
	lastErr error
}

// apply applies entries in one transaction or, when that fails and there are several, one by
// one, so that one bad entry does not hold back the others; it records the lag of every change
// applied.
func (c *Consumer) apply(ctx context.Context, entries []entry) applied {
	var out applied
	if len(entries) == 0 {
		return out
	}
	record := func(e entry, err error) {
		switch settle(err) {
		case ack:
			out.acked = append(out.acked, e.msg.ID)
		case bury:
			out.dead = append(out.dead, deadLetter{e.msg, err.Error(), e.deliveries})
		case leave:
			out.failed++
			out.lastErr = err
		}
	}
	changes := make([]attendee.Change, len(entries))
	for i, e := range entries {
		changes[i] = e.change
	}
	res, err := c.store.ApplyChanges(ctx, attendee.Batch{Changes: changes})
	c.observe(res)
	if err == nil || len(entries) == 1 {
		for _, e := range entries {
			record(e, err)
		}
		return out
	}
	for i, e := range entries {
		res, err := c.store.ApplyChanges(ctx, attendee.Batch{Changes: changes[i : i+1]})
		c.observe(res)
		record(e, err)
	}
	return out
}

func (c *Consumer) observe(res attendee.ApplyResult) {
	for _, l := range res.Lags {
		c.m.lag.Observe(max(l, 0).Seconds()) // clocks of two hosts may disagree a little
	}
}

// handle applies msgs and acks what was applied or dead-lettered, while ahead (nil when the
// round reads nothing ahead) brings the next entries. Entries whose apply failed for another
// reason stay pending; the next rounds re-read them with backoff.
//
// The acks of the applied entries wait for the next round's read, to go in its round trip,
// when that round follows at once: the round went well and ahead brought entries. Otherwise
// they go now. Either way an entry is acked only after the statement that applied it committed.
func (c *Consumer) handle(ctx context.Context, msgs []redis.XMessage, deliveries map[string]int64, ahead *readAhead) error {
	entries, dead := triage(msgs, deliveries, c.cfg.MaxDeliveries)
	out := c.apply(ctx, entries)
	dead = append(dead, out.dead...)
	dlErr := c.deadLetter(ctx, dead)
	next, aheadErr := c.awaitReadAhead(ahead)
	c.next = next // kept even after a failure: they are delivered, and handled next round
	var ackErr, failedErr error
	if out.failed == 0 && dlErr == nil && aheadErr == nil && len(next) > 0 {
		c.unacked = out.acked
	} else {
		ackErr = c.ack(ctx, out.acked)
	}
	c.log.InfoContext(ctx, "applied stream entries", "entries", len(msgs), "applied", len(out.acked),
		"dead_lettered", len(dead), "failed", out.failed, "read_ahead", len(next))
	if out.failed > 0 {
		c.dbSuspect, c.retryOwn = true, true
		failedErr = fmt.Errorf("%d of %d entries not applied, left pending for retry: %w", out.failed, len(msgs), out.lastErr)
	}
	return errors.Join(failedErr, dlErr, aheadErr, ackErr)
}

// deadLetter copies each entry to the dead-letter stream with its reason and acks it, in one
// MULTI, so an entry is never both acked and lost nor dead-lettered twice by one call.
func (c *Consumer) deadLetter(ctx context.Context, dead []deadLetter) error {
	if len(dead) == 0 {
		return nil
	}
	dlq := redisconn.Keys(c.cfg.Stream).DeadLetter // in the stream's slot, so MULTI works on a cluster too
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, d := range dead {
			p.XAdd(ctx, &redis.XAddArgs{
				Stream: dlq, MaxLen: c.cfg.DeadLetterMaxLen, Approx: true,
				Values: deadLetterFields(d, c.cfg.Group, c.cfg.Consumer),
			})
			p.XAck(ctx, c.cfg.Stream, c.cfg.Group, d.msg.ID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("dead-letter %d entries: %w", len(dead), err)
	}
	c.m.deadLettered.Add(float64(len(dead)))
	for _, d := range dead {
		c.log.WarnContext(ctx, "entry dead-lettered", "entry_id", d.msg.ID, "reason", d.reason, "dead_letter_stream", dlq)
	}
	return nil
}

// deadLetterFields are the original entry's fields and those changeevent names for a dead
// letter, in a fixed order.
func deadLetterFields(d deadLetter, group, consumer string) []any {
	keys := make([]string, 0, len(d.msg.Values))
	for k := range d.msg.Values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]any, 0, 2*len(keys)+10)
	for _, k := range keys {
		out = append(out, k, fmt.Sprint(d.msg.Values[k]))
	}
	deliveries := max(d.deliveries, 1)
	return append(out,
		changeevent.FieldDLQReason, d.reason,
		changeevent.FieldDLQSourceID, d.msg.ID,
		changeevent.FieldDLQDeliveries, strconv.FormatInt(deliveries, 10),
		changeevent.FieldDLQGroup, group,
		changeevent.FieldDLQConsumer, consumer,
	)
}
