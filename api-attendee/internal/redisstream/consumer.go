// Package redisstream is api-attendee's push-mode consumer: it reads conference change events
// from a Redis stream with a consumer group and applies them through the store's one apply
// path, acking each entry only after the transaction that applied it has committed. It reads
// the next batch while it applies one, the acks of the batch before in the same round trip
// (ahead.go).
//
// Delivery is at least once and applying is idempotent, so every failure is handled by doing
// the work again: entries left pending by a consumer that died are reclaimed with XAUTOCLAIM,
// a lost group (Redis restarted empty) is recreated, and every retry waits with backoff. An
// entry that cannot be decoded, or keeps failing, goes to the dead-letter stream with its
// reason so that it cannot block the entries after it.
package redisstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/syncer/backoff"
)

// Applier applies a batch of changes in one transaction. postgres.Store is the applier in
// production; the consumer needs only these two methods of it.
type Applier interface {
	ApplyChanges(ctx context.Context, b attendee.Batch) (attendee.ApplyResult, error)
	Ping(ctx context.Context) error
}

// Consumer reads one stream as one member of a consumer group. It is not safe for
// concurrent use: run one Run per Consumer, and more Consumers (processes) to share the work.
type Consumer struct {
	cfg   Config
	rdb   redis.UniversalClient
	store Applier
	log   *slog.Logger

	groupReady  bool
	claimCursor string
	lastClaim   time.Time
	// dbSuspect is set when an apply failed for a reason other than the entry itself. Until the
	// database answers again the consumer neither reads nor reclaims, so that an outage does
	// not use up the delivery counts of good entries and send them to the dead-letter stream.
	dbSuspect bool
	// retryOwn is set when an apply failed: the entries stay pending for this consumer, and
	// the next rounds re-read them (with backoff) instead of waiting ClaimMinIdle for them.
	retryOwn bool
	backoff  *backoff.Backoff
	// next holds the new entries read ahead while the last batch was applied (see readAhead),
	// for the next round to handle; unacked holds that batch's entries, applied and committed,
	// whose XACK rides with the next round's read. Either is non-empty only with the other,
	// between two rounds, and Run's finish sees both through when it stops.
	next    []redis.XMessage
	unacked []string

	m *metrics
}

// New returns a Consumer of cfg.Stream, after filling cfg's defaults and validating it.
func New(rdb redis.UniversalClient, store Applier, cfg Config) (*Consumer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stream consumer: %w", err)
	}
	c := &Consumer{
		cfg: cfg, rdb: rdb, store: store,
		log:         cfg.Logger.With("stream", cfg.Stream, "group", cfg.Group, "consumer", cfg.Consumer),
		claimCursor: "0-0",
		backoff:     backoff.New(cfg.BackoffBase, cfg.BackoffMax),
		m:           newMetrics(cfg.Stream, cfg.Group),
	}
	if cfg.Registerer != nil {
		if err := c.m.register(cfg.Registerer); err != nil {
			return nil, fmt.Errorf("stream consumer: register metrics: %w", err)
		}
	}
	return c, nil
}

// Name is the consumer's name in its group.
func (c *Consumer) Name() string { return c.cfg.Consumer }

// Run consumes until ctx is cancelled, then finishes the batch in hand, acks it and returns
// nil. Failures are logged and retried with backoff; Run returns no other error.
func (c *Consumer) Run(ctx context.Context) error {
	c.log.InfoContext(ctx, "stream consumer started", "batch_size", c.cfg.BatchSize,
		"claim_min_idle", c.cfg.ClaimMinIdle.String(), "max_deliveries", c.cfg.MaxDeliveries)
	for ctx.Err() == nil {
		if _, err := c.runOnce(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			c.m.retries.Inc()
			c.log.WarnContext(ctx, "stream consumer failed; retrying after a backoff", "err", err)
			if !c.backoff.Wait(ctx) {
				break
			}
			continue
		}
		c.backoff.Reset()
	}
	c.finish(context.WithoutCancel(ctx))
	c.leaveGroup(context.WithoutCancel(ctx))
	c.log.InfoContext(context.WithoutCancel(ctx), "stream consumer stopped")
	return nil
}

// leaveGroup removes this consumer from the group when it holds no pending entry, so that
// restarts do not pile up dead names in XINFO CONSUMERS. With pending entries it stays: deleting
// it would drop them from the group, and another consumer must reclaim them instead.
func (c *Consumer) leaveGroup(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	pending, err := c.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: c.cfg.Stream, Group: c.cfg.Group, Consumer: c.cfg.Consumer, Start: "-", End: "+", Count: 1,
	}).Result()
	if err != nil || len(pending) > 0 {
		return // Redis is unreachable, or entries wait for a reclaim: keep the name
	}
	if err := c.rdb.XGroupDelConsumer(ctx, c.cfg.Stream, c.cfg.Group, c.cfg.Consumer).Err(); err != nil {
		c.log.WarnContext(ctx, "leave consumer group", "err", err)
	}
}

// runOnce does one round: make sure the group exists, take the entries read ahead by the last
// round or else reclaim idle entries when due or read new ones, and handle what it got while
// the next read runs (readAhead). It returns how many entries it handled.
//
// Once ctx is cancelled no new round starts. A read already in flight is not cut off — Redis
// may have handed entries to this consumer — but ends within Block; whatever it returned is
// applied and acked under a context of its own (by Run's finish, for entries read ahead), so
// a shutdown never leaves a batch half done.
func (c *Consumer) runOnce(ctx context.Context) (int, error) {
	if ctx.Err() != nil {
		return 0, nil
	}
	// Bounded by the block time (plus slack for a slow network), not by ctx: see above.
	readCtx, cancelRead := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Block+10*time.Second)
	defer cancelRead()
	if c.dbSuspect {
		if err := c.store.Ping(readCtx); err != nil {
			return 0, fmt.Errorf("wait for the database: %w", err)
		}
		c.dbSuspect = false
	}
	if !c.groupReady {
		if err := c.ensureGroup(readCtx); err != nil {
			return 0, err
		}
	}
	msgs, deliveries := c.next, map[string]int64(nil) // entries read ahead are new: delivered once
	c.next = nil
	if len(msgs) == 0 {
		var err error
		if msgs, deliveries, err = c.fetch(readCtx); err != nil || len(msgs) == 0 {
			return 0, err
		}
	}
	var ahead *readAhead
	var ackErr error
	if c.mayReadAhead(ctx) {
		ahead = c.readAhead(readCtx)
	} else {
		ackErr = c.flushAcks(readCtx)
	}
	workCtx, cancelWork := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ApplyTimeout)
	defer cancelWork()
	return len(msgs), errors.Join(ackErr, c.handle(workCtx, msgs, deliveries, ahead))
}

// finish handles the entries read ahead that no round took up and sends the acks still owed,
// so that a consumer that stops leaves nothing read but not applied, nor applied but not acked.
func (c *Consumer) finish(ctx context.Context) {
	if len(c.next) > 0 {
		msgs := c.next
		c.next = nil
		workCtx, cancel := context.WithTimeout(ctx, c.cfg.ApplyTimeout)
		defer cancel()
		if err := c.handle(workCtx, msgs, nil, nil); err != nil {
			c.log.WarnContext(ctx, "stream consumer stopping: entries read ahead left pending", "err", err)
		}
	}
	if err := c.flushAcks(ctx); err != nil {
		c.log.WarnContext(ctx, "stream consumer stopping: applied entries left unacked", "err", err)
	}
}

// ensureGroup creates the group from the start of the stream, so a new group reads the
// backlog, and the stream itself if it does not exist yet.
func (c *Consumer) ensureGroup(ctx context.Context) error {
	err := c.rdb.XGroupCreateMkStream(ctx, c.cfg.Stream, c.cfg.Group, "0").Err()
	switch {
	case err == nil:
		c.m.groupsCreated.Inc()
		c.log.InfoContext(ctx, "consumer group created")
	case strings.HasPrefix(err.Error(), "BUSYGROUP"):
		// Another consumer made it first, or it survived: both fine.
	default:
		return fmt.Errorf("create consumer group: %w", err)
	}
	c.groupReady = true
	c.claimCursor = "0-0"
	return nil
}

// redisFailed wraps err and notes a lost group, so the next round recreates it.
func (c *Consumer) redisFailed(op string, err error) error {
	if strings.HasPrefix(err.Error(), "NOGROUP") {
		c.groupReady = false
		return fmt.Errorf("%s: the consumer group is gone (Redis lost its data?), recreating it: %w", op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
