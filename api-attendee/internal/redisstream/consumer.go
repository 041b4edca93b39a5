// Package redisstream is api-attendee's push-mode consumer: it reads conference change events
// from a Redis stream with a consumer group and applies them through the store's one apply
// path, acking each entry only after the transaction that applied it has committed.
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
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/syncer/redisconn"
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
	backoff  backoff

	stats counters
	// lag observes applied_at - occurred_at of every change this consumer applied.
	lag prometheus.Histogram
}

// lagBuckets are the buckets of the propagation-lag histograms, in seconds: from a
// millisecond to the minutes a backlog or an outage can take.
var lagBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

type counters struct {
	read, reclaimed, applied, deadLettered, retries, groupsCreated atomic.Int64
}

// Stats are the counts of what a Consumer has done since it was made.
type Stats struct {
	// Read counts entries received, by XREADGROUP or by reclaiming.
	Read int64
	// Reclaimed counts entries taken over from idle consumers (including this one).
	Reclaimed int64
	// Applied counts entries applied and acked.
	Applied int64
	// DeadLettered counts entries moved to the dead-letter stream.
	DeadLettered int64
	// Retries counts failed rounds that were retried after a backoff: reconnects included.
	Retries int64
	// GroupsCreated counts XGROUP CREATE calls that made the group (at start, after NOGROUP).
	GroupsCreated int64
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
		backoff:     backoff{base: cfg.BackoffBase, max: cfg.BackoffMax},
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "attendee_consumer_lag_seconds",
			Help:        "Propagation lag of each change the consumer applied: applied_at - occurred_at.",
			ConstLabels: prometheus.Labels{"stream": cfg.Stream, "group": cfg.Group}, Buckets: lagBuckets,
		}),
	}
	if cfg.Registerer != nil {
		if err := c.register(cfg.Registerer); err != nil {
			return nil, fmt.Errorf("stream consumer: register metrics: %w", err)
		}
	}
	return c, nil
}

// Name is the consumer's name in its group.
func (c *Consumer) Name() string { return c.cfg.Consumer }

// Stats returns what the consumer has done so far. It is safe to call from any goroutine.
func (c *Consumer) Stats() Stats {
	return Stats{
		Read: c.stats.read.Load(), Reclaimed: c.stats.reclaimed.Load(), Applied: c.stats.applied.Load(),
		DeadLettered: c.stats.deadLettered.Load(), Retries: c.stats.retries.Load(),
		GroupsCreated: c.stats.groupsCreated.Load(),
	}
}

func (c *Consumer) register(reg prometheus.Registerer) error {
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "attendee_consumer_" + name, Help: help,
			ConstLabels: prometheus.Labels{"stream": c.cfg.Stream, "group": c.cfg.Group},
		}, func() float64 { return float64(v.Load()) })
	}
	for _, col := range []prometheus.Collector{
		counter("entries_read_total", "Stream entries received, new or reclaimed.", &c.stats.read),
		counter("entries_reclaimed_total", "Stream entries reclaimed from idle consumers with XAUTOCLAIM.", &c.stats.reclaimed),
		counter("entries_applied_total", "Stream entries applied and acked.", &c.stats.applied),
		counter("entries_dead_lettered_total", "Stream entries moved to the dead-letter stream.", &c.stats.deadLettered),
		counter("retries_total", "Failed rounds retried after a backoff, reconnects included.", &c.stats.retries),
		counter("groups_created_total", "Consumer groups created, at start or after NOGROUP.", &c.stats.groupsCreated),
		c.lag,
	} {
		if err := reg.Register(col); err != nil {
			return err
		}
	}
	return nil
}

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
			c.stats.retries.Add(1)
			wait := c.backoff.next()
			c.log.WarnContext(ctx, "stream consumer failed; retrying", "err", err, "retry_in", wait.Round(time.Millisecond).String())
			if !sleep(ctx, wait) {
				break
			}
			continue
		}
		c.backoff.reset()
	}
	c.leaveGroup(context.WithoutCancel(ctx))
	c.log.InfoContext(context.WithoutCancel(ctx), "stream consumer stopped", "applied", c.stats.applied.Load())
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

// runOnce does one round: make sure the group exists, reclaim idle entries when due or else
// read new ones, and handle what it got. It returns how many entries it handled.
//
// Once ctx is cancelled no new round starts. A read already in flight is not cut off — Redis
// may have handed entries to this consumer — but ends within Block; whatever it returned is
// applied and acked under a context of its own, so a shutdown never leaves a batch half done.
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
	var (
		msgs       []redis.XMessage
		deliveries map[string]int64
		err        error
	)
	if c.retryOwn {
		if msgs, deliveries, err = c.readOwnPending(readCtx); err != nil {
			return 0, c.redisFailed("re-read own pending entries", err)
		}
		c.retryOwn = len(msgs) > 0
	}
	if len(msgs) == 0 {
		if msgs, deliveries, err = c.reclaim(readCtx); err != nil {
			return 0, c.redisFailed("reclaim", err)
		}
	}
	if len(msgs) == 0 {
		if msgs, err = c.read(readCtx); err != nil {
			return 0, c.redisFailed("read", err)
		}
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	workCtx, cancelWork := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ApplyTimeout)
	defer cancelWork()
	return len(msgs), c.handle(workCtx, msgs, deliveries)
}

// ensureGroup creates the group from the start of the stream, so a new group reads the
// backlog, and the stream itself if it does not exist yet.
func (c *Consumer) ensureGroup(ctx context.Context) error {
	err := c.rdb.XGroupCreateMkStream(ctx, c.cfg.Stream, c.cfg.Group, "0").Err()
	switch {
	case err == nil:
		c.stats.groupsCreated.Add(1)
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
	var msgs []redis.XMessage
	for _, s := range streams {
		msgs = append(msgs, s.Messages...)
	}
	c.stats.read.Add(int64(len(msgs)))
	return msgs, nil
}

// reclaim takes over, when due, entries that have stayed pending longer than ClaimMinIdle —
// their consumer died, or (this one's own) their apply failed — and returns them with how
// often each has been delivered, the reclaim included.
func (c *Consumer) reclaim(ctx context.Context) ([]redis.XMessage, map[string]int64, error) {
	// A sweep in progress goes on without waiting for the interval.
	if c.claimCursor == "0-0" && time.Since(c.lastClaim) < c.cfg.ClaimInterval {
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
	if len(msgs) == 0 {
		return nil, nil, nil
	}
	deliveries, err := c.deliveryCounts(ctx, msgs)
	if err != nil {
		return nil, nil, err
	}
	c.stats.read.Add(int64(len(msgs)))
	c.stats.reclaimed.Add(int64(len(msgs)))
	c.log.InfoContext(ctx, "reclaimed idle entries", "entries", len(msgs))
	return msgs, deliveries, nil
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
	var msgs []redis.XMessage
	for _, s := range streams {
		for _, m := range s.Messages {
			if m.Values != nil { // an entry trimmed away since comes back without values
				msgs = append(msgs, m)
			}
		}
	}
	if len(msgs) == 0 {
		return nil, nil, nil
	}
	deliveries, err := c.deliveryCounts(ctx, msgs)
	if err != nil {
		return nil, nil, err
	}
	c.stats.read.Add(int64(len(msgs)))
	c.log.InfoContext(ctx, "retrying entries whose apply failed", "entries", len(msgs))
	return msgs, deliveries, nil
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

type deadLetter struct {
	msg        redis.XMessage
	reason     string
	deliveries int64
}

// handle applies msgs and acks what was applied or dead-lettered. Entries whose apply failed
// for another reason stay pending; the next rounds re-read them with backoff.
func (c *Consumer) handle(ctx context.Context, msgs []redis.XMessage, deliveries map[string]int64) error {
	var (
		events []attendee.Change
		ids    []string
		dead   []deadLetter
	)
	for _, m := range msgs {
		n := deliveries[m.ID]
		if n > c.cfg.MaxDeliveries {
			dead = append(dead, deadLetter{m, fmt.Sprintf("not applied after %d deliveries", n-1), n})
			continue
		}
		// The stream's trust boundary: the entry is decoded and checked here, once.
		e, err := attendee.DecodeChange(m.Values)
		if err != nil {
			dead = append(dead, deadLetter{m, err.Error(), n})
			continue
		}
		events = append(events, e)
		ids = append(ids, m.ID)
	}

	var (
		acked   []string
		failed  int
		lastErr error
	)
	byID := make(map[string]redis.XMessage, len(msgs))
	for _, m := range msgs {
		byID[m.ID] = m
	}
	settle := func(i int, err error) {
		switch {
		case err == nil:
			acked = append(acked, ids[i])
		case errors.Is(err, attendee.ErrInvalid):
			dead = append(dead, deadLetter{byID[ids[i]], err.Error(), deliveries[ids[i]]})
		default:
			failed++
			lastErr = err
		}
	}
	observe := func(res attendee.ApplyResult) {
		for _, l := range res.Lags {
			c.lag.Observe(max(l, 0).Seconds()) // clocks of two hosts may disagree a little
		}
	}
	if len(events) > 0 {
		res, err := c.store.ApplyChanges(ctx, attendee.Batch{Changes: events})
		switch {
		case err == nil:
			acked = ids
			observe(res)
		case len(events) == 1:
			settle(0, err)
		default:
			// One bad entry must not hold back the others: apply them one by one.
			for i, e := range events {
				res, err := c.store.ApplyChanges(ctx, attendee.Batch{Changes: []attendee.Change{e}})
				settle(i, err)
				observe(res)
			}
		}
	}

	if err := c.deadLetter(ctx, dead); err != nil {
		return err
	}
	if len(acked) > 0 {
		if err := c.rdb.XAck(ctx, c.cfg.Stream, c.cfg.Group, acked...).Err(); err != nil {
			// Applied but not acked: the entries come back and are applied again, harmlessly.
			return fmt.Errorf("ack %d applied entries: %w", len(acked), err)
		}
		c.stats.applied.Add(int64(len(acked)))
	}
	c.log.InfoContext(ctx, "applied stream entries", "entries", len(msgs), "applied", len(acked),
		"dead_lettered", len(dead), "failed", failed)
	if failed > 0 {
		c.dbSuspect, c.retryOwn = true, true
		return fmt.Errorf("%d of %d entries not applied, left pending for retry: %w", failed, len(msgs), lastErr)
	}
	return nil
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
	c.stats.deadLettered.Add(int64(len(dead)))
	for _, d := range dead {
		c.log.WarnContext(ctx, "entry dead-lettered", "entry_id", d.msg.ID, "reason", d.reason, "dead_letter_stream", dlq)
	}
	return nil
}

// Fields a dead-letter entry adds to the original entry's.
const (
	FieldDLQReason     = "dlq_reason"
	FieldDLQSourceID   = "dlq_source_id"
	FieldDLQDeliveries = "dlq_deliveries"
	FieldDLQGroup      = "dlq_group"
	FieldDLQConsumer   = "dlq_consumer"
)

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
		FieldDLQReason, d.reason,
		FieldDLQSourceID, d.msg.ID,
		FieldDLQDeliveries, strconv.FormatInt(deliveries, 10),
		FieldDLQGroup, group,
		FieldDLQConsumer, consumer,
	)
}

// backoff is exponential backoff with a cap and jitter: each wait is drawn from the upper half
// of the current step, so replicas that failed together do not retry together.
type backoff struct {
	base, max time.Duration
	attempt   int
}

func (b *backoff) next() time.Duration {
	d := b.max
	if b.attempt < 30 {
		d = min(b.base<<b.attempt, b.max)
	}
	b.attempt++
	half := d / 2
	return half + rand.N(half+1)
}

func (b *backoff) reset() { b.attempt = 0 }

// sleep waits for d or until ctx is done, and reports whether it waited the whole time.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
