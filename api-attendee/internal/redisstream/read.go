package redisstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// fetch returns the entries of this round, with how often each has been delivered where that
// matters (nil for new entries): this consumer's own failed entries while it retries them,
// else idle entries to reclaim when a sweep is due, else new ones.
func (c *Consumer) fetch(ctx context.Context) ([]redis.XMessage, map[string]int64, error) {
	if c.retryOwn {
		msgs, deliveries, err := c.readOwnPending(ctx)
		if err != nil {
			return nil, nil, c.redisFailed("re-read own pending entries", err)
		}
		if c.retryOwn = len(msgs) > 0; c.retryOwn {
			return msgs, deliveries, nil
		}
	}
	msgs, deliveries, err := c.reclaim(ctx)
	if err != nil {
		return nil, nil, c.redisFailed("reclaim", err)
	}
	if len(msgs) > 0 {
		return msgs, deliveries, nil
	}
	if msgs, err = c.read(ctx); err != nil {
		return nil, nil, c.redisFailed("read", err)
	}
	return msgs, nil, nil
}

func (c *Consumer) read(ctx context.Context) ([]redis.XMessage, error) {
	streams, err := c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: c.cfg.Group, Consumer: c.cfg.Consumer, Streams: []string{c.cfg.Stream, ">"},
		Count: int64(c.cfg.BatchSize), Block: c.cfg.Block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	msgs := messagesOf(streams)
	c.m.read.Add(float64(len(msgs)))
	return msgs, nil
}

// reclaim takes over, when due, entries that have stayed pending longer than ClaimMinIdle —
// their consumer died, or (this one's own) their apply failed — and returns them with how
// often each has been delivered, the reclaim included.
func (c *Consumer) reclaim(ctx context.Context) ([]redis.XMessage, map[string]int64, error) {
	if !c.reclaimDue() {
		return nil, nil, nil
	}
	msgs, next, err := c.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: c.cfg.Stream, Group: c.cfg.Group, Consumer: c.cfg.Consumer,
		MinIdle: c.cfg.ClaimMinIdle, Start: c.claimCursor, Count: int64(c.cfg.BatchSize),
	}).Result()
	if err != nil {
		return nil, nil, err
	}
	c.claimCursor = next
	if next == "0-0" {
		c.lastClaim = time.Now()
	}
	deliveries, err := c.redelivered(ctx, msgs, "reclaimed idle entries")
	if err != nil {
		return nil, nil, err
	}
	c.m.reclaimed.Add(float64(len(msgs)))
	return msgs, deliveries, nil
}

// reclaimDue reports whether the next fetch looks for idle entries: a sweep in progress goes on
// without waiting for the interval.
func (c *Consumer) reclaimDue() bool {
	return c.claimCursor != "0-0" || time.Since(c.lastClaim) >= c.cfg.ClaimInterval
}

// readOwnPending re-reads the entries delivered to this consumer and not acked (XREADGROUP
// from id 0), with how often each has been delivered, this read included: an entry whose
// apply fails every time still ends in the dead-letter stream after MaxDeliveries. While the
// database does not answer at all, the dbSuspect gate keeps these re-reads from happening.
func (c *Consumer) readOwnPending(ctx context.Context) ([]redis.XMessage, map[string]int64, error) {
	streams, err := c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: c.cfg.Group, Consumer: c.cfg.Consumer, Streams: []string{c.cfg.Stream, "0"},
		Count: int64(c.cfg.BatchSize),
	}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, err
	}
	msgs := messagesOf(streams)
	deliveries, err := c.redelivered(ctx, msgs, "retrying entries whose apply failed")
	if err != nil {
		return nil, nil, err
	}
	return msgs, deliveries, nil
}

// redelivered counts msgs, entries delivered again, as read, logs them with what, and
// returns how often each has been delivered.
func (c *Consumer) redelivered(ctx context.Context, msgs []redis.XMessage, what string) (map[string]int64, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	deliveries, err := c.deliveryCounts(ctx, msgs)
	if err != nil {
		return nil, err
	}
	c.m.read.Add(float64(len(msgs)))
	c.log.InfoContext(ctx, what, "entries", len(msgs))
	return deliveries, nil
}

// deliveryCounts reads how often each entry has been delivered. XAUTOCLAIM and XREADGROUP do
// not say; XPENDING does, one exact lookup per entry, all in one round trip.
func (c *Consumer) deliveryCounts(ctx context.Context, msgs []redis.XMessage) (map[string]int64, error) {
	cmds := make([]*redis.XPendingExtCmd, len(msgs))
	if _, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range msgs {
			cmds[i] = p.XPendingExt(ctx, &redis.XPendingExtArgs{
				Stream: c.cfg.Stream, Group: c.cfg.Group, Start: m.ID, End: m.ID, Count: 1,
			})
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read delivery counts: %w", err)
	}
	deliveries := make(map[string]int64, len(msgs))
	for _, cmd := range cmds {
		for _, p := range cmd.Val() {
			deliveries[p.ID] = p.RetryCount
		}
	}
	return deliveries, nil
}

// messagesOf flattens the entries of an XREADGROUP answer. An entry trimmed from the stream
// since it was delivered comes back (from a re-read of the pending list) without values: it is
// left out, as there is nothing left to apply.
func messagesOf(streams []redis.XStream) []redis.XMessage {
	var msgs []redis.XMessage
	for _, s := range streams {
		for _, m := range s.Messages {
			if m.Values != nil {
				msgs = append(msgs, m)
			}
		}
	}
	return msgs
}
