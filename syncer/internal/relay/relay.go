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
//
// Beside publishing, in a loop of its own (heal.go), the healer watches for Redis losing what
// it accepted and reconciles api-attendee when it does; the publisher only asks it for a
// reconcile after a long outage.
package relay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"conferencego/syncer/changeevent"
	"conferencego/syncer/redisconn"
)

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
	heal      *healer
	// lastPublished is the newest entry this relay added, kept after each committed batch.
	// The next batch's pipeline reads the stream's last generated ID before its XADDs: one
	// that went back, or a stream that is gone, means Redis lost what it had accepted, and
	// the check must happen there, because once the XADDs are in, the stream looks whole to
	// any later look (the healer's included).
	lastPublished streamID
	// after makes the timers of Poll and Linger; tests replace it to hold a linger open.
	after func(time.Duration) <-chan time.Time
	// pubMu makes one batch at a time publish and move lastPublished: with TransportLogical the
	// table's sweep runs beside the slot's stream.
	pubMu sync.Mutex
}

// New returns a relay over the conference database (pool, whose search_path reaches the
// outbox; listenCfg opens the LISTEN connection, and may be nil when cfg.Poll is set) and Redis.
func New(log *slog.Logger, pool *pgxpool.Pool, listenCfg *pgx.ConnConfig, rdb redis.UniversalClient, cfg Config, reg prometheus.Registerer) (*Relay, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if listenCfg == nil && cfg.Poll == 0 && cfg.Transport == TransportTable {
		return nil, errors.New("relay: a LISTEN connection's settings are needed unless the outbox is polled")
	}
	m := newMetrics(reg, cfg.Stream)
	heal := newHealer(log, pool, rdb, healConfig{
		Stream: cfg.Stream, EpochCheck: cfg.EpochCheck, Reconcile: cfg.Reconcile,
		ReconcileInterval: cfg.ReconcileInterval, ReconcileFailed: cfg.ReconcileFailed,
	}, m)
	return &Relay{
		cfg: cfg, log: log, pool: pool, listenCfg: listenCfg, rdb: rdb, keys: redisconn.Keys(cfg.Stream), m: m,
		wake: make(chan struct{}, 1), heal: heal, after: time.After,
	}, nil
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
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
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	r.m.claims.Inc()
	tx := &claimTx{conn: conn}
	defer tx.rollbackIfOpen(ctx)
	claimed, err := tx.claim(ctx, r.cfg.BatchSize)
	if err != nil {
		return 0, err
	}
	if len(claimed) == 0 {
		if err := tx.commit(ctx, &pgx.Batch{}); err != nil {
			return 0, fmt.Errorf("commit empty claim: %w", err)
		}
		return 0, nil
	}
	b, err := r.publish(ctx, claimed, nil)
	if err != nil {
		return 0, err
	}
	// The newest entry goes on record in the transaction that forgets the rows, and in the same
	// round trip as its COMMIT: a stream later found behind it has lost what Redis accepted.
	commit := &pgx.Batch{}
	if b.last != nil {
		commit.Queue(changeevent.RecordPublishedSQL, r.cfg.Stream, b.last.ms, b.last.seq)
	}
	if err := tx.commit(ctx, commit); err != nil {
		return 0, fmt.Errorf("commit published batch: %w", err)
	}
	r.done(b)
	return len(claimed), nil
}

// done keeps what a batch published once it is on record: the newest entry, the counters.
func (r *Relay) done(b batchOut) {
	if b.last != nil && r.lastPublished.before(*b.last) {
		r.lastPublished = *b.last
	}
	r.m.published.Add(float64(b.published))
	r.m.deadLettered.Add(float64(b.dead))
	r.m.batches.Inc()
	if !b.oldest.IsZero() {
		r.m.lag.Observe(time.Since(b.oldest).Seconds())
	}
	if b.dead > 0 {
		r.log.Error("outbox rows the contract refuses were dead-lettered", "count", b.dead, "stream", r.keys.DeadLetter)
	}
	r.log.Debug("published outbox batch", "events", b.published, "stream", r.cfg.Stream)
}

// claimTx is the transaction of one batch on its connection. Until commit succeeds the claimed
// rows stay locked, and anything that fails rolls their delete back.
type claimTx struct {
	conn *pgxpool.Conn
	open bool
}

// claim begins the transaction and claims up to n outbox rows, in outbox order.
func (tx *claimTx) claim(ctx context.Context, n int) ([]changeevent.OutboxRow, error) {
	batch := &pgx.Batch{}
	batch.Queue("BEGIN")
	batch.Queue("SET LOCAL synchronous_commit = off")
	batch.Queue(changeevent.ClaimOutboxSQL, n)
	res := tx.conn.SendBatch(ctx, batch)
	tx.open = true
	if _, err := res.Exec(); err != nil {
		res.Close()
		return nil, fmt.Errorf("begin: %w", err)
	}
	if _, err := res.Exec(); err != nil {
		res.Close()
		return nil, fmt.Errorf("relax commit: %w", err)
	}
	rows, err := res.Query()
	if err != nil {
		res.Close()
		return nil, fmt.Errorf("claim outbox rows: %w", err)
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
		return nil, fmt.Errorf("claim outbox rows: %w", err)
	}
	// DELETE … RETURNING gives no order; publish in outbox order.
	slices.SortFunc(claimed, func(a, b changeevent.OutboxRow) int { return cmp.Compare(a.ID, b.ID) })
	return claimed, nil
}

// commit sends batch and COMMIT in one round trip.
func (tx *claimTx) commit(ctx context.Context, batch *pgx.Batch) error {
	batch.Queue("COMMIT")
	tx.open = false
	return tx.conn.SendBatch(ctx, batch).Close()
}

// rollbackIfOpen rolls back a transaction that is still open because something failed, or
// drops the connection if even that fails.
func (tx *claimTx) rollbackIfOpen(ctx context.Context) {
	if !tx.open {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := tx.conn.Exec(rctx, "ROLLBACK"); err != nil {
		tx.conn.Conn().Close(rctx)
	}
}

// batchOut is what publish wrote: last is the ID of the newest stream entry, nil when every
// row was dead-lettered; oldest is when the oldest published event happened.
type batchOut struct {
	published, dead int
	last            *streamID
	oldest          time.Time
}

// publish writes the claimed rows to the stream, and those the contract refuses to the
// dead-letter stream, in one pipeline on the primary of the stream's slot; with WaitReplicas
// it then waits until that many replicas hold them.
//
// refused, if set, gives the reason of a row that could not be read at all (a logical message
// that is not the contract's JSON); that row is dead-lettered with it.
func (r *Relay) publish(ctx context.Context, claimed []changeevent.OutboxRow, refused map[int]error) (batchOut, error) {
	// One connection, so that a WAIT after the batch counts the replicas of these writes (on a
	// cluster client a keyless WAIT would go to any node).
	primary, err := redisconn.Primary(ctx, r.rdb, r.keys.Stream)
	if err != nil {
		return batchOut{}, fmt.Errorf("find the primary of %s: %w", r.cfg.Stream, err)
	}
	pipe := primary.Pipeline()
	var head *redis.XInfoStreamCmd
	if r.lastPublished != (streamID{}) {
		head = pipe.XInfoStream(ctx, r.cfg.Stream)
	}
	var b batchOut
	var adds []*redis.StringCmd
	for i, o := range claimed {
		e, fields, err := o.Entry()
		if refused[i] != nil {
			err = refused[i]
		}
		if err != nil {
			// A row the contract refuses would block the outbox forever if retried; park it
			// where a person can see it, with the reason.
			b.dead++
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: r.keys.DeadLetter, MaxLen: 100_000, Approx: true, Values: r.deadLetter(o, err)})
			continue
		}
		if b.oldest.IsZero() || e.OccurredAt.Before(b.oldest) {
			b.oldest = e.OccurredAt
		}
		adds = append(adds, pipe.XAdd(ctx, &redis.XAddArgs{Stream: r.cfg.Stream, MaxLen: r.cfg.MaxLen, Approx: true, Values: fields}))
	}
	var wait *redis.Cmd
	if r.cfg.WaitReplicas > 0 {
		// In the same pipeline, so on the connection that wrote: WAIT counts the replicas
		// that hold this connection's writes.
		wait = pipe.Do(ctx, "WAIT", r.cfg.WaitReplicas, r.cfg.WaitTimeout.Milliseconds())
	}
	cmds, _ := pipe.Exec(ctx)
	for _, c := range cmds {
		// The look at the stream may fail on its own (a stream that is gone); every other
		// command must succeed, or the batch goes out again.
		if err := c.Err(); err != nil && (head == nil || c != redis.Cmder(head)) {
			return batchOut{}, fmt.Errorf("publish %d events to %s: %w", len(claimed), r.cfg.Stream, err)
		}
	}
	r.checkHead(head)
	if err := r.checkWait(wait, len(claimed)); err != nil {
		return batchOut{}, err
	}
	b.published = len(claimed) - b.dead
	if len(adds) > 0 {
		id := adds[len(adds)-1].Val()
		last, err := parseID(id)
		if err != nil {
			return batchOut{}, fmt.Errorf("publish to %s: Redis answered entry ID %q: %w", r.cfg.Stream, id, err)
		}
		b.last = &last
	}
	return b, nil
}

// checkHead reports a loss to the healer when the stream, as it was just before this batch,
// ended before the newest entry this relay had published, or was gone.
func (r *Relay) checkHead(head *redis.XInfoStreamCmd) {
	if head == nil {
		return
	}
	info, err := head.Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			r.heal.report(loss{lossBehind, "the stream was gone; the relay had published up to " + r.lastPublished.String(), "gone@" + r.lastPublished.String()})
		} else {
			r.log.Debug("cannot read the stream's last ID before publishing", "err", err)
		}
		return
	}
	last, err := parseID(info.LastGeneratedID)
	if err == nil && last.before(r.lastPublished) {
		r.heal.report(loss{lossBehind, fmt.Sprintf("the stream ended at %s; the relay had published up to %s", last, r.lastPublished), "behind@" + r.lastPublished.String()})
	}
}

// checkWait fails a batch of n rows that fewer replicas than WaitReplicas acknowledged; the
// deferred ROLLBACK then keeps its rows, which go out again. wait is nil without WaitReplicas.
func (r *Relay) checkWait(wait *redis.Cmd, n int) error {
	if wait == nil {
		return nil
	}
	acked, err := wait.Int()
	if err != nil {
		return fmt.Errorf("wait for %d replicas of %s: %w", r.cfg.WaitReplicas, r.cfg.Stream, err)
	}
	if acked < r.cfg.WaitReplicas {
		r.m.waitShortfalls.Inc()
		return fmt.Errorf("%d of %d replicas hold the batch after %s; keeping its %d outbox rows to publish again",
			acked, r.cfg.WaitReplicas, r.cfg.WaitTimeout, n)
	}
	return nil
}

// deadLetter is the dead-letter entry of an outbox row the contract refuses: its columns as
// they are, and why. A row read from a logical message names the message's position instead
// of an outbox id (and data holds the message as it came when it could not be read).
func (r *Relay) deadLetter(o changeevent.OutboxRow, reason error) []string {
	source, id := "outbox", []string{changeevent.FieldDLQOutboxID, strconv.FormatInt(o.ID, 10)}
	if r.cfg.Transport == TransportLogical {
		source, id = "wal", []string{changeevent.FieldDLQSourceID, pglogrepl.LSN(o.ID).String()}
	}
	return append([]string{
		changeevent.FieldDLQReason, reason.Error(), changeevent.FieldDLQSource, source}, append(id,
		changeevent.FieldEventID, o.EventID, changeevent.FieldType, o.Type,
		changeevent.FieldConferenceID, strconv.FormatInt(o.ConferenceID, 10),
		changeevent.FieldVersion, strconv.FormatInt(o.Version, 10), changeevent.FieldData, string(o.Payload))...)
}
