package redisstream

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Reading ahead keeps Redis and Postgres busy at once. While a batch is applied, the next
// XREADGROUP is already on its way, and the XACK of the batch before rides in the same round
// trip (a pipeline), so that at a batch size of 1 a round costs the longer of one apply and one
// Redis round trip rather than an apply and two round trips one after another.
//
// At least once holds as before: the acks sent with a read are of a batch whose apply has
// committed, and entries read ahead are delivered to this consumer, pending, until a round
// applies and acks them; a crash anywhere only re-delivers. The read ahead does not block
// (Redis answers at once, with what there is), so it never holds up the acks of an idle stream,
// and it is left out when the next round must do something else: reclaim, re-read this
// consumer's failed entries, or stop.

// readAhead is one read ahead in flight, with the acks that ride with it.
type readAhead struct {
	done  chan struct{}
	acked []string
	// Set by the read's goroutine before done closes.
	msgs            []redis.XMessage
	ackErr, readErr error
}

// mayReadAhead reports whether the round after this one will read new entries.
func (c *Consumer) mayReadAhead(ctx context.Context) bool {
	return ctx.Err() == nil && !c.retryOwn && !c.reclaimDue()
}

// readAhead sends the acks owed and the next read in one pipeline, in a goroutine of its own;
// awaitReadAhead collects the answer. The goroutine touches nothing of the Consumer but its
// client and its settings.
func (c *Consumer) readAhead(ctx context.Context) *readAhead {
	r := &readAhead{done: make(chan struct{}), acked: c.unacked}
	c.unacked = nil
	go func() {
		defer close(r.done)
		var ack *redis.IntCmd
		var read *redis.XStreamSliceCmd
		// Each command's error is read from the command; Exec's is the first of them.
		_, _ = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			if len(r.acked) > 0 {
				ack = p.XAck(ctx, c.cfg.Stream, c.cfg.Group, r.acked...)
			}
			read = p.XReadGroup(ctx, &redis.XReadGroupArgs{
				Group: c.cfg.Group, Consumer: c.cfg.Consumer, Streams: []string{c.cfg.Stream, ">"},
				Count: int64(c.cfg.BatchSize), Block: -1, // no BLOCK: answer with what there is
			})
			return nil
		})
		if ack != nil {
			r.ackErr = ack.Err()
		}
		streams, err := read.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			r.readErr = err
			return
		}
		r.msgs = messagesOf(streams)
	}()
	return r
}

// awaitReadAhead waits for r (nil: none) and returns the entries it read, counting them and
// the acks that rode with it.
func (c *Consumer) awaitReadAhead(r *readAhead) ([]redis.XMessage, error) {
	if r == nil {
		return nil, nil
	}
	<-r.done
	var errs []error
	if r.ackErr != nil {
		// Applied but not acked: the entries come back and are applied again, harmlessly.
		errs = append(errs, c.redisFailed(fmt.Sprintf("ack %d applied entries", len(r.acked)), r.ackErr))
	} else {
		c.m.applied.Add(float64(len(r.acked)))
	}
	if r.readErr != nil {
		errs = append(errs, c.redisFailed("read ahead", r.readErr))
	}
	c.m.read.Add(float64(len(r.msgs)))
	return r.msgs, errors.Join(errs...)
}

// ack acks ids, entries applied and committed, in a round trip of their own.
func (c *Consumer) ack(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := c.rdb.XAck(ctx, c.cfg.Stream, c.cfg.Group, ids...).Err(); err != nil {
		// Applied but not acked: the entries come back and are applied again, harmlessly.
		return c.redisFailed(fmt.Sprintf("ack %d applied entries", len(ids)), err)
	}
	c.m.applied.Add(float64(len(ids)))
	return nil
}

// flushAcks sends the acks that waited for a read ahead which the round does not make.
func (c *Consumer) flushAcks(ctx context.Context) error {
	ids := c.unacked
	c.unacked = nil
	return c.ack(ctx, ids)
}
