// Package relay is push mode's half of the syncer: it moves api-conference's transactional
// outbox into a Redis stream, and notices when Redis has lost what it was given.
//
// A batch of outbox rows is claimed and deleted by one DELETE … (SELECT … FOR UPDATE SKIP
// LOCKED) … RETURNING, written to the stream with pipelined XADDs, and the transaction commits
// only after Redis accepted every entry; until then the rows stay locked, and a failure
// rolls the delete back.
// Rows are never skipped, whatever order their transactions commit in, because nothing tracks
// a position: whatever is still in the table is still to be published. A crash between XADD and
// commit publishes a batch twice, which consumers absorb through the version guard.
package relay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"conferencego/syncer/changeevent"
	"conferencego/syncer/internal/backoff"
)

// Config holds the relay's settings. Zero values take the defaults of setDefaults.
type Config struct {
	// Stream is the Redis stream events go to; dead letters go to Stream + ".dlq".
	Stream string
	// MaxLen caps the stream approximately (XADD MAXLEN ~). Entries beyond it are trimmed
	// even if unread, so it must be far above any backlog a consumer can build up.
	MaxLen int64
	// BatchSize is how many outbox rows one transaction claims and publishes.
	BatchSize int
	// Sweep is how often the outbox is read when no notification arrives: the fallback for a
	// notification lost while the listener was reconnecting.
	Sweep time.Duration
	// EpochCheck is how often the relay checks that Redis still holds its epoch marker.
	EpochCheck time.Duration
	// Reconcile, if set, brings api-attendee level with the source through a full snapshot.
	// It runs at start, whenever Redis is found to have lost its data, and every
	// ReconcileInterval if that is positive. Nil turns self-healing off.
	Reconcile         func(ctx context.Context) error
	ReconcileInterval time.Duration
	// ReconcileFailed, if set, reports a failed reconcile instead of the relay's own warning
	// (it is retried with backoff either way), so that a changed source is said once.
	ReconcileFailed func(err error)
	// LongOutage is how long publishing may fail before its recovery triggers a reconcile:
	// well under api-conference's OUTBOX_RETENTION, after which unpublished rows are pruned.
	LongOutage time.Duration
}

func (c *Config) setDefaults() {
	if c.Stream == "" {
		c.Stream = changeevent.DefaultStream
	}
	if c.MaxLen == 0 {
		c.MaxLen = 1_000_000
	}
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.Sweep == 0 {
		c.Sweep = 5 * time.Second
	}
	if c.EpochCheck == 0 {
		c.EpochCheck = time.Second
	}
	if c.LongOutage == 0 {
		c.LongOutage = time.Hour
	}
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxLen < 1000 {
		errs = append(errs, fmt.Errorf("stream max length %d is below 1000", c.MaxLen))
	}
	if c.BatchSize < 1 || c.BatchSize > 10000 {
		errs = append(errs, fmt.Errorf("batch size %d is not within 1…10000", c.BatchSize))
	}
	if c.Sweep < 10*time.Millisecond || c.EpochCheck < 10*time.Millisecond {
		errs = append(errs, errors.New("sweep and epoch check intervals must be at least 10ms"))
	}
	if c.ReconcileInterval < 0 {
		errs = append(errs, errors.New("reconcile interval is negative"))
	}
	return errors.Join(errs...)
}

// EpochKey is the Redis key whose absence says that Redis lost its data.
func EpochKey(stream string) string { return stream + ".epoch" }

// Relay publishes the outbox.
type Relay struct {
	cfg       Config
	log       *slog.Logger
	pool      *pgxpool.Pool
	listenCfg *pgx.ConnConfig
	rdb       *redis.Client
	m         *metrics
	wake      chan struct{}
	reconcile chan struct{}
	// trimSeen is the stream's first entry when a loss to trimming was last reconciled.
	trimSeen string
}

// New returns a relay over the conference database (pool, whose search_path reaches the
// outbox; listenCfg opens the LISTEN connection) and Redis.
func New(log *slog.Logger, pool *pgxpool.Pool, listenCfg *pgx.ConnConfig, rdb *redis.Client, cfg Config, reg prometheus.Registerer) (*Relay, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Relay{
		cfg: cfg, log: log, pool: pool, listenCfg: listenCfg, rdb: rdb, m: newMetrics(reg, cfg.Stream),
		wake: make(chan struct{}, 1), reconcile: make(chan struct{}, 1),
	}, nil
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run publishes until ctx ends. It returns nil on cancellation.
func (r *Relay) Run(ctx context.Context) error {
	go r.listen(ctx)
	go r.watchEpoch(ctx)
	if r.cfg.Reconcile != nil {
		go r.reconcileLoop(ctx)
	}
	sweep := time.NewTicker(r.cfg.Sweep)
	defer sweep.Stop()
	bo := backoff.New(100*time.Millisecond, 10*time.Second)
	var failingSince time.Time
	for {
		n, err := r.runOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			r.m.errors.Inc()
			r.log.Warn("publishing the outbox failed; retrying", "err", err, "failing_for", time.Since(failingSince).Round(time.Second).String())
			if !bo.Wait(ctx) {
				return nil
			}
			continue
		}
		if !failingSince.IsZero() {
			// api-conference prunes outbox rows older than its retention; after an outage that
			// long some events may never have been published at all.
			if outage := time.Since(failingSince); outage >= r.cfg.LongOutage && r.cfg.Reconcile != nil {
				r.log.Warn("publishing works again after a long outage; reconciling in case old outbox rows were pruned", "outage", outage.Round(time.Second).String())
				signal(r.reconcile)
			}
			failingSince = time.Time{}
		}
		bo.Reset()
		if n == r.cfg.BatchSize {
			continue // there may be more
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-sweep.C:
		}
	}
}

// runOnce claims up to BatchSize outbox rows, publishes them and deletes them, and returns how
// many it handled.
//
// BEGIN, the relaxed commit setting and the claiming DELETE go out as one pipeline, so a
// batch costs two round trips to Postgres (that one, and COMMIT) and one to Redis. The commit
// need not wait for the disk: if it is lost, the rows come back and are published again,
// which consumers absorb.
func (r *Relay) runOnce(ctx context.Context) (int, error) {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	inTx := false
	defer func() {
		if inTx {
			// Still open: something failed. Roll back, or drop the connection if even that fails.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, err := conn.Exec(rctx, "ROLLBACK"); err != nil {
				conn.Conn().Close(rctx)
			}
		}
	}()
	batch := &pgx.Batch{}
	batch.Queue("BEGIN")
	batch.Queue("SET LOCAL synchronous_commit = off")
	batch.Queue(changeevent.ClaimOutboxSQL, r.cfg.BatchSize)
	res := conn.SendBatch(ctx, batch)
	inTx = true
	if _, err := res.Exec(); err != nil {
		res.Close()
		return 0, fmt.Errorf("begin: %w", err)
	}
	if _, err := res.Exec(); err != nil {
		res.Close()
		return 0, fmt.Errorf("relax commit: %w", err)
	}
	rows, err := res.Query()
	if err != nil {
		res.Close()
		return 0, fmt.Errorf("claim outbox rows: %w", err)
	}
	claimed, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (changeevent.OutboxRow, error) {
		var o changeevent.OutboxRow
		err := row.Scan(&o.ID, &o.EventID, &o.ConferenceID, &o.Type, &o.Version, &o.Payload, &o.OccurredAt)
		return o, err
	})
	if cerr := res.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("claim outbox rows: %w", err)
	}
	if len(claimed) == 0 {
		inTx = false
		if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
			return 0, fmt.Errorf("commit empty claim: %w", err)
		}
		return 0, nil
	}
	// DELETE … RETURNING gives no order; publish in outbox order.
	slices.SortFunc(claimed, func(a, b changeevent.OutboxRow) int { return cmp.Compare(a.ID, b.ID) })

	pipe := r.rdb.Pipeline()
	var oldest time.Time
	dead := 0
	for _, o := range claimed {
		// Checked once here; the payload's bytes go out as api-conference wrote them.
		e, err := o.Event()
		if err != nil {
			// A row the contract refuses would block the outbox forever if retried; park it
			// where a person can see it, with the reason.
			dead++
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: r.cfg.Stream + changeevent.DeadLetterSuffix, MaxLen: 100_000, Approx: true, Values: []string{
				changeevent.FieldDLQReason, err.Error(), changeevent.FieldDLQSource, "outbox",
				changeevent.FieldDLQOutboxID, strconv.FormatInt(o.ID, 10),
				changeevent.FieldEventID, o.EventID, changeevent.FieldType, o.Type,
				changeevent.FieldConferenceID, strconv.FormatInt(o.ConferenceID, 10),
				changeevent.FieldVersion, strconv.FormatInt(o.Version, 10), changeevent.FieldData, string(o.Payload),
			}})
			continue
		}
		if oldest.IsZero() || e.OccurredAt.Before(oldest) {
			oldest = e.OccurredAt
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: r.cfg.Stream, MaxLen: r.cfg.MaxLen, Approx: true, Values: e.FieldsWithData(o.Payload)})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("publish %d events to %s: %w", len(claimed), r.cfg.Stream, err)
	}
	inTx = false
	if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
		return 0, fmt.Errorf("commit published batch: %w", err)
	}
	published := len(claimed) - dead
	r.m.published.Add(float64(published))
	r.m.deadLettered.Add(float64(dead))
	r.m.batches.Inc()
	if !oldest.IsZero() {
		r.m.lag.Observe(time.Since(oldest).Seconds())
	}
	if dead > 0 {
		r.log.Error("outbox rows the contract refuses were dead-lettered", "count", dead, "stream", r.cfg.Stream+changeevent.DeadLetterSuffix)
	}
	r.log.Debug("published outbox batch", "events", published, "stream", r.cfg.Stream)
	return len(claimed), nil
}

// listen keeps a LISTEN connection open and wakes the publisher on every notification. Each
// (re)connect wakes it too, to catch up on whatever was committed while nobody listened.
func (r *Relay) listen(ctx context.Context) {
	bo := backoff.New(100*time.Millisecond, 10*time.Second)
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, r.listenCfg)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+pgx.Identifier{changeevent.NotifyChannel}.Sanitize())
		}
		if err != nil {
			if conn != nil {
				conn.Close(context.WithoutCancel(ctx))
			}
			if ctx.Err() != nil {
				return
			}
			r.m.listenerReconnects.Inc()
			r.log.Warn("cannot listen for outbox notifications; the sweep covers meanwhile", "err", err)
			bo.Wait(ctx)
			continue
		}
		bo.Reset()
		signal(r.wake)
		for {
			if _, err = conn.WaitForNotification(ctx); err != nil {
				break
			}
			signal(r.wake)
		}
		conn.Close(context.WithoutCancel(ctx))
		if ctx.Err() == nil {
			r.m.listenerReconnects.Inc()
			r.log.Warn("outbox listener lost its connection; reconnecting", "err", err)
			bo.Wait(ctx)
		}
	}
}

// watchEpoch checks that Redis still holds the epoch marker. Redis without it has been
// restarted without persistence or flushed: events it held but nobody had applied are gone,
// so a reconcile must make up for them.
func (r *Relay) watchEpoch(ctx context.Context) {
	key := EpochKey(r.cfg.Stream)
	tick := time.NewTicker(r.cfg.EpochCheck)
	defer tick.Stop()
	// The first look always reconciles: this process may be replacing one that died after
	// noticing a loss and before repairing it.
	first := r.cfg.Reconcile != nil
	for {
		set, err := r.rdb.SetNX(ctx, key, strconv.FormatInt(time.Now().UnixNano(), 10)+"-"+strconv.FormatUint(rand.Uint64(), 36), 0).Result()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.log.Debug("cannot check the epoch marker", "err", err)
		case set:
			// Set now: Redis is new, or lost its data. Both want a reconcile.
			first = false
			r.m.epochsStarted.Inc()
			r.log.Warn("Redis holds no epoch marker: it lost its data or is new; reconciling", "key", key)
			if r.cfg.Reconcile == nil {
				r.log.Error("reconcile is off (no SYNC_TOKEN): events Redis lost are not recovered")
			} else {
				signal(r.reconcile)
			}
		case first:
			first = false
			signal(r.reconcile)
		}
		if r.cfg.Reconcile != nil {
			if oldest, lost, err := r.lostToTrimming(ctx); err != nil {
				r.log.Debug("cannot check the stream for trimmed entries", "err", err)
			} else if lost && oldest != r.trimSeen {
				r.trimSeen = oldest
				r.m.trimLosses.Inc()
				r.log.Warn("the stream's length cap trimmed entries a consumer group never read; reconciling",
					"stream", r.cfg.Stream, "oldest_entry", oldest)
				signal(r.reconcile)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// lostToTrimming reports whether MAXLEN trimming removed entries some consumer group had not
// read, with the stream's oldest entry as it stands. A group whose last delivered entry is
// older than the oldest entry left has read nothing that remains; if it has more unread
// entries than the stream now holds (Redis 7's lag: entries added minus entries read), the
// difference was trimmed away. When Redis cannot tell the lag, a gap is taken as a loss: a
// reconcile too many is harmless, one too few is not.
func (r *Relay) lostToTrimming(ctx context.Context) (string, bool, error) {
	info, err := r.rdb.XInfoStream(ctx, r.cfg.Stream).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return "", false, nil
		}
		return "", false, fmt.Errorf("XINFO STREAM: %w", err)
	}
	if info.Length == 0 {
		return "", false, nil
	}
	oldest := info.FirstEntry.ID
	groups, err := r.rdb.XInfoGroups(ctx, r.cfg.Stream).Result()
	if err != nil {
		return "", false, fmt.Errorf("XINFO GROUPS: %w", err)
	}
	for _, g := range groups {
		if !idBefore(g.LastDeliveredID, oldest) {
			continue // everything after what it read is still there
		}
		if g.Lag < 0 || g.Lag > info.Length {
			return oldest, true, nil
		}
	}
	return oldest, false, nil
}

// idBefore reports whether stream entry id a is older than b ("ms-seq", compared as numbers).
func idBefore(a, b string) bool {
	parse := func(id string) (uint64, uint64) {
		ms, seq, _ := strings.Cut(id, "-")
		m, _ := strconv.ParseUint(ms, 10, 64)
		s, _ := strconv.ParseUint(seq, 10, 64)
		return m, s
	}
	am, as := parse(a)
	bm, bs := parse(b)
	return am < bm || (am == bm && as < bs)
}

// reconcileLoop runs Config.Reconcile when asked and every ReconcileInterval, retrying a
// failure with backoff until it succeeds. It runs apart from publishing, so a slow or absent
// api-attendee never holds up the stream.
func (r *Relay) reconcileLoop(ctx context.Context) {
	var tick <-chan time.Time
	if r.cfg.ReconcileInterval > 0 {
		t := time.NewTicker(r.cfg.ReconcileInterval)
		defer t.Stop()
		tick = t.C
	}
	bo := backoff.New(200*time.Millisecond, 15*time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.reconcile:
		case <-tick:
		}
		for {
			start := time.Now()
			err := r.cfg.Reconcile(ctx)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				r.m.reconciles.Inc()
				r.log.Debug("reconcile finished", "took", time.Since(start).String())
				bo.Reset()
				break
			}
			r.m.reconcileErrors.Inc()
			if r.cfg.ReconcileFailed != nil {
				r.cfg.ReconcileFailed(err)
			} else {
				r.log.Warn("reconcile failed; retrying", "err", err)
			}
			if !bo.Wait(ctx) {
				return
			}
		}
	}
}
