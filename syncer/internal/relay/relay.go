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

	"conferencego/syncer/backoff"
	"conferencego/syncer/changeevent"
	"conferencego/syncer/redisconn"
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
	// WaitReplicas, if positive, makes the relay WAIT after its XADDs until that many replicas
	// hold them, for at most WaitTimeout, before it deletes the outbox rows: a failover then
	// cannot lose an entry the outbox has forgotten. When fewer acknowledge in time, the batch
	// stays in the outbox and is published again (consumers absorb the duplicates).
	WaitReplicas int
	WaitTimeout  time.Duration
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
	if c.WaitTimeout == 0 {
		c.WaitTimeout = time.Second
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
	if c.WaitReplicas < 0 || c.WaitReplicas > 100 {
		errs = append(errs, fmt.Errorf("replicas to wait for, %d, is not within 0…100", c.WaitReplicas))
	}
	if c.WaitTimeout < time.Millisecond {
		errs = append(errs, errors.New("the replica wait timeout is under 1ms"))
	}
	return errors.Join(errs...)
}

// EpochKey is the Redis key whose absence says that Redis lost its data.
func EpochKey(stream string) string { return redisconn.Keys(stream).Epoch }

// Relay publishes the outbox.
type Relay struct {
	cfg       Config
	log       *slog.Logger
	pool      *pgxpool.Pool
	listenCfg *pgx.ConnConfig
	rdb       redis.UniversalClient
	keys      redisconn.StreamKeys
	m         *metrics
	wake      chan struct{}
	reconcile chan struct{}
	// lossSeen is the fingerprint of the loss last reconciled.
	lossSeen string
}

// New returns a relay over the conference database (pool, whose search_path reaches the
// outbox; listenCfg opens the LISTEN connection) and Redis.
func New(log *slog.Logger, pool *pgxpool.Pool, listenCfg *pgx.ConnConfig, rdb redis.UniversalClient, cfg Config, reg prometheus.Registerer) (*Relay, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Relay{
		cfg: cfg, log: log, pool: pool, listenCfg: listenCfg, rdb: rdb, keys: redisconn.Keys(cfg.Stream), m: newMetrics(reg, cfg.Stream),
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

	// The batch goes to the primary that holds the stream's slot, on one connection, so that a
	// WAIT after it counts the replicas of these writes (on a cluster client a keyless WAIT
	// would go to any node).
	primary, err := redisconn.Primary(ctx, r.rdb, r.keys.Stream)
	if err != nil {
		return 0, fmt.Errorf("find the primary of %s: %w", r.cfg.Stream, err)
	}
	pipe := primary.Pipeline()
	var oldest time.Time
	dead := 0
	var adds []*redis.StringCmd
	for _, o := range claimed {
		// Checked once here; the payload's bytes go out as api-conference wrote them.
		e, err := o.Event()
		if err != nil {
			// A row the contract refuses would block the outbox forever if retried; park it
			// where a person can see it, with the reason.
			dead++
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: r.keys.DeadLetter, MaxLen: 100_000, Approx: true, Values: []string{
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
		adds = append(adds, pipe.XAdd(ctx, &redis.XAddArgs{Stream: r.cfg.Stream, MaxLen: r.cfg.MaxLen, Approx: true, Values: e.FieldsWithData(o.Payload)}))
	}
	var wait *redis.Cmd
	if r.cfg.WaitReplicas > 0 {
		// In the same pipeline, so on the connection that wrote: WAIT counts the replicas
		// that hold this connection's writes.
		wait = pipe.Do(ctx, "WAIT", r.cfg.WaitReplicas, r.cfg.WaitTimeout.Milliseconds())
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("publish %d events to %s: %w", len(claimed), r.cfg.Stream, err)
	}
	if wait != nil {
		acked, err := wait.Int()
		if err != nil {
			return 0, fmt.Errorf("wait for %d replicas of %s: %w", r.cfg.WaitReplicas, r.cfg.Stream, err)
		}
		if acked < r.cfg.WaitReplicas {
			// Rolled back by the deferred ROLLBACK: the rows stay, and go out again.
			r.m.waitShortfalls.Inc()
			return 0, fmt.Errorf("%d of %d replicas hold the batch after %s; keeping its %d outbox rows to publish again",
				acked, r.cfg.WaitReplicas, r.cfg.WaitTimeout, len(claimed))
		}
	}
	// The newest entry goes on record in the transaction that forgets the rows, and in the same
	// round trip as its COMMIT: a stream later found behind it has lost what Redis accepted.
	commit := &pgx.Batch{}
	if len(adds) > 0 {
		last, err := parseID(adds[len(adds)-1].Val())
		if err != nil {
			return 0, fmt.Errorf("publish to %s: Redis answered entry ID %q: %w", r.cfg.Stream, adds[len(adds)-1].Val(), err)
		}
		commit.Queue(changeevent.RecordPublishedSQL, r.cfg.Stream, last.ms, last.seq)
	}
	commit.Queue("COMMIT")
	inTx = false
	if err := conn.SendBatch(ctx, commit).Close(); err != nil {
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
		r.log.Error("outbox rows the contract refuses were dead-lettered", "count", dead, "stream", r.keys.DeadLetter)
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
	key := r.keys.Epoch
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
		if l, err := r.findLoss(ctx); err != nil {
			r.log.Debug("cannot check the stream for lost entries", "err", err)
		} else if l.cause != "" && l.fingerprint != r.lossSeen {
			// Seen once per loss: until the relay publishes again, the next look finds the same.
			r.lossSeen = l.fingerprint
			r.m.losses.WithLabelValues(l.cause).Inc()
			if l.cause == lossTrimmed {
				r.m.trimLosses.Inc()
			}
			if r.cfg.Reconcile == nil {
				r.log.Error("Redis lost stream entries, and reconcile is off (no SYNC_TOKEN): they are not recovered", "stream", r.cfg.Stream, "cause", l.cause, "detail", l.detail)
			} else {
				r.log.Warn("Redis lost stream entries it had accepted; reconciling", "stream", r.cfg.Stream, "cause", l.cause, "detail", l.detail)
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

// The ways Redis is found to have lost entries it accepted, as the label of relay_redis_losses_total.
const (
	// lossBehind: the stream ends before the newest entry the relay recorded as published, or is
	// gone (a restore from an older snapshot, appendfsync everysec after a crash, a failover to a
	// replica that lagged, a DEL).
	lossBehind = "behind"
	// lossGroupAhead: a consumer group has been delivered entries past the stream's end.
	lossGroupAhead = "group_ahead"
	// lossTrimmed: entries a group had not read were trimmed (the length cap, or XTRIM/MAXLEN
	// by hand).
	lossTrimmed = "trimmed"
	// lossPending: entries delivered to a consumer and not yet acknowledged are no longer in
	// the stream, so their redelivery would find nothing.
	lossPending = "pending"
)

// loss is what findLoss found: no cause when nothing is lost. Its fingerprint names this
// loss, so that a state seen again is not reconciled twice.
type loss struct {
	cause, detail, fingerprint string
}

// findLoss compares the stream with what the relay recorded as published and with what its
// consumer groups have been given. Everything it reports is something Redis accepted and no
// longer holds; a reconcile makes up for it. Being wrong towards a reconcile too many is
// harmless; one too few is not.
func (r *Relay) findLoss(ctx context.Context) (loss, error) {
	// The recorded position first: whatever it names, Redis accepted before this look.
	var pos streamID
	recorded := true
	if err := r.pool.QueryRow(ctx, changeevent.PublishedPositionSQL, r.cfg.Stream).Scan(&pos.ms, &pos.seq); err != nil {
		if !errors.Is(err, pgx.ErrNoRows) {
			return loss{}, fmt.Errorf("read the published position: %w", err)
		}
		recorded = false
	}
	info, err := r.rdb.XInfoStream(ctx, r.cfg.Stream).Result()
	if err != nil {
		if !strings.Contains(err.Error(), "no such key") {
			return loss{}, fmt.Errorf("XINFO STREAM: %w", err)
		}
		if recorded {
			return loss{lossBehind, "the stream is gone; the relay had published up to " + pos.String(), "gone@" + pos.String()}, nil
		}
		return loss{}, nil
	}
	last, err := parseID(info.LastGeneratedID)
	if err != nil {
		return loss{}, fmt.Errorf("XINFO STREAM: %w", err)
	}
	if recorded && last.before(pos) {
		return loss{lossBehind, fmt.Sprintf("the stream ends at %s; the relay had published up to %s", last, pos), "behind@" + pos.String()}, nil
	}
	groups, err := r.rdb.XInfoGroups(ctx, r.cfg.Stream).Result()
	if err != nil {
		return loss{}, fmt.Errorf("XINFO GROUPS: %w", err)
	}
	first := info.FirstEntry.ID
	for _, g := range groups {
		delivered, _ := parseID(g.LastDeliveredID)
		if last.before(delivered) {
			return loss{lossGroupAhead, fmt.Sprintf("group %s was delivered up to %s; the stream ends at %s", g.Name, delivered, last), "ahead@" + g.Name + "@" + delivered.String()}, nil
		}
		if g.Pending > 0 {
			p, err := r.rdb.XPending(ctx, r.cfg.Stream, g.Name).Result()
			if err != nil {
				return loss{}, fmt.Errorf("XPENDING %s: %w", g.Name, err)
			}
			if p.Count > 0 && (info.Length == 0 || idBefore(p.Lower, first)) {
				return loss{lossPending, fmt.Sprintf("group %s has %d pending deliveries from %s; the stream starts at %q", g.Name, p.Count, p.Lower, first), "pending@" + g.Name + "@" + p.Lower}, nil
			}
		}
		// An empty stream whose last ID is past what the group was delivered had entries the
		// group never got. Otherwise Redis 7's lag (entries added minus entries read) tells:
		// more of them than the stream holds, for a group that has read nothing still there,
		// means some were trimmed unread; when Redis cannot tell the lag (-1), a gap is taken
		// as a loss.
		if (info.Length == 0 && delivered.before(last)) ||
			(info.Length > 0 && idBefore(g.LastDeliveredID, first) && (g.Lag < 0 || g.Lag > info.Length)) {
			return loss{lossTrimmed, fmt.Sprintf("group %s had %d entries to read; the stream holds %d", g.Name, g.Lag, info.Length), "trimmed@" + g.Name + "@" + info.LastGeneratedID}, nil
		}
	}
	return loss{}, nil
}

// streamID is a stream entry ID, "ms-seq", as its two numbers.
type streamID struct{ ms, seq int64 }

func parseID(id string) (streamID, error) {
	ms, seq, ok := strings.Cut(id, "-")
	m, err1 := strconv.ParseInt(ms, 10, 64)
	n, err2 := strconv.ParseInt(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil || m < 0 || n < 0 {
		return streamID{}, fmt.Errorf("stream entry ID %q is not ms-seq", id)
	}
	return streamID{m, n}, nil
}

func (a streamID) before(b streamID) bool {
	return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq)
}

func (a streamID) String() string {
	return strconv.FormatInt(a.ms, 10) + "-" + strconv.FormatInt(a.seq, 10)
}

// idBefore reports whether stream entry id a is older than b; an ID that does not parse
// counts as 0-0.
func idBefore(a, b string) bool {
	x, _ := parseID(a)
	y, _ := parseID(b)
	return x.before(y)
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
