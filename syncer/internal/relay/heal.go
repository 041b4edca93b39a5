package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"conferencego/syncer/backoff"
	"conferencego/syncer/changeevent"
	"conferencego/syncer/redisconn"
)

// healConfig is the healer's part of Config; Config documents each setting. It lives in the
// relay's package, not its own, because the loss checks are tested against the position the
// publisher records, at a level no exported API needs to show.
type healConfig struct {
	Stream            string
	EpochCheck        time.Duration
	Reconcile         func(ctx context.Context) error
	ReconcileInterval time.Duration
	ReconcileFailed   func(err error)
}

// healer is push mode's self-healing, a loop of its own beside publishing: it watches Redis for
// signs that it lost entries it had accepted (the epoch marker; the stream against the recorded
// position and its consumer groups) and runs the reconcile when it finds one, when asked, and
// every ReconcileInterval.
type healer struct {
	cfg  healConfig
	log  *slog.Logger
	pool *pgxpool.Pool
	rdb  redis.UniversalClient
	keys redisconn.StreamKeys
	m    *metrics
	// due asks reconcileLoop for a reconcile; requests made while one is queued merge.
	due chan struct{}
	// first is true until the first look, which always reconciles: this process may be
	// replacing one that died after noticing a loss and before repairing it.
	first bool
	// mu guards lossSeen, the fingerprint of the loss last reconciled.
	mu       sync.Mutex
	lossSeen string
}

func newHealer(log *slog.Logger, pool *pgxpool.Pool, rdb redis.UniversalClient, cfg healConfig, m *metrics) *healer {
	return &healer{cfg: cfg, log: log, pool: pool, rdb: rdb, keys: redisconn.Keys(cfg.Stream), m: m,
		due: make(chan struct{}, 1), first: cfg.Reconcile != nil}
}

// request asks for a reconcile, if reconcile is on.
func (h *healer) request() {
	if h.cfg.Reconcile != nil {
		signal(h.due)
	}
}

// run looks every EpochCheck until ctx ends, and reconciles apart from looking, so that a slow
// or absent api-attendee never delays noticing the next loss.
func (h *healer) run(ctx context.Context) {
	if h.cfg.Reconcile != nil {
		go h.reconcileLoop(ctx)
	}
	tick := time.NewTicker(h.cfg.EpochCheck)
	defer tick.Stop()
	for {
		h.runOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// runOnce takes one look at Redis and asks for a reconcile if it finds data lost. A look that
// fails is only logged: the next one tries again, and publishing does not depend on it.
func (h *healer) runOnce(ctx context.Context) {
	set, err := h.rdb.SetNX(ctx, h.keys.Epoch, strconv.FormatInt(time.Now().UnixNano(), 10)+"-"+strconv.FormatUint(rand.Uint64(), 36), 0).Result()
	switch {
	case ctx.Err() != nil:
		return
	case err != nil:
		h.log.Debug("cannot check the epoch marker", "err", err)
	case set:
		// Set now: Redis is new, or lost its data. Both want a reconcile.
		h.first = false
		h.m.epochsStarted.Inc()
		h.log.Warn("Redis holds no epoch marker: it lost its data or is new; reconciling", "key", h.keys.Epoch)
		if h.cfg.Reconcile == nil {
			h.log.Error("reconcile is off (no SYNC_TOKEN): events Redis lost are not recovered")
		}
		h.request()
	case h.first:
		h.first = false
		h.request()
	}
	l, err := h.findLoss(ctx)
	if err != nil {
		h.log.Debug("cannot check the stream for lost entries", "err", err)
		return
	}
	h.report(l)
}

// report counts loss l and asks for a reconcile, once per loss: until the relay publishes
// again, the next look finds the same. The healer's looks and the publisher's check before
// each batch both report here.
func (h *healer) report(l loss) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if l.cause == "" || l.fingerprint == h.lossSeen {
		return
	}
	h.lossSeen = l.fingerprint
	h.m.losses.WithLabelValues(l.cause).Inc()
	if l.cause == lossTrimmed {
		h.m.trimLosses.Inc()
	}
	if h.cfg.Reconcile == nil {
		h.log.Error("Redis lost stream entries, and reconcile is off (no SYNC_TOKEN): they are not recovered", "stream", h.cfg.Stream, "cause", l.cause, "detail", l.detail)
		return
	}
	h.log.Warn("Redis lost stream entries it had accepted; reconciling", "stream", h.cfg.Stream, "cause", l.cause, "detail", l.detail)
	h.request()
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
func (h *healer) findLoss(ctx context.Context) (loss, error) {
	// The recorded position first: whatever it names, Redis accepted before this look.
	var pos streamID
	recorded := true
	if err := h.pool.QueryRow(ctx, changeevent.PublishedPositionSQL, h.cfg.Stream).Scan(&pos.ms, &pos.seq); err != nil {
		if !errors.Is(err, pgx.ErrNoRows) {
			return loss{}, fmt.Errorf("read the published position: %w", err)
		}
		recorded = false
	}
	info, err := h.rdb.XInfoStream(ctx, h.cfg.Stream).Result()
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
	groups, err := h.rdb.XInfoGroups(ctx, h.cfg.Stream).Result()
	if err != nil {
		return loss{}, fmt.Errorf("XINFO GROUPS: %w", err)
	}
	for _, g := range groups {
		if l, err := h.groupLoss(ctx, info, last, g); l.cause != "" || err != nil {
			return l, err
		}
	}
	return loss{}, nil
}

// groupLoss looks for what consumer group g was given, or was to be given, and the stream no
// longer holds; last is the stream's last generated ID.
func (h *healer) groupLoss(ctx context.Context, info *redis.XInfoStream, last streamID, g redis.XInfoGroup) (loss, error) {
	first := info.FirstEntry.ID
	delivered, _ := parseID(g.LastDeliveredID)
	if last.before(delivered) {
		return loss{lossGroupAhead, fmt.Sprintf("group %s was delivered up to %s; the stream ends at %s", g.Name, delivered, last), "ahead@" + g.Name + "@" + delivered.String()}, nil
	}
	if g.Pending > 0 {
		p, err := h.rdb.XPending(ctx, h.cfg.Stream, g.Name).Result()
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
	return loss{}, nil
}

// reconcileLoop runs Reconcile when asked and every ReconcileInterval, retrying a failure with
// backoff until it succeeds.
func (h *healer) reconcileLoop(ctx context.Context) {
	var tick <-chan time.Time
	if h.cfg.ReconcileInterval > 0 {
		t := time.NewTicker(h.cfg.ReconcileInterval)
		defer t.Stop()
		tick = t.C
	}
	bo := backoff.New(200*time.Millisecond, 15*time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.due:
		case <-tick:
		}
		if !h.reconcileUntilDone(ctx, bo) {
			return
		}
	}
}

// reconcileUntilDone runs Reconcile until it succeeds, and reports false if ctx ended first.
func (h *healer) reconcileUntilDone(ctx context.Context, bo *backoff.Backoff) bool {
	var start time.Time
	reconcile := func(ctx context.Context) error {
		start = time.Now()
		return h.cfg.Reconcile(ctx)
	}
	failed := func(err error) {
		h.m.reconcileErrors.Inc()
		if h.cfg.ReconcileFailed != nil {
			h.cfg.ReconcileFailed(err)
		} else {
			h.log.Warn("reconcile failed; retrying", "err", err)
		}
	}
	if !bo.Retry(ctx, reconcile, failed) {
		return false
	}
	h.m.reconciles.Inc()
	h.log.Debug("reconcile finished", "took", time.Since(start).String())
	return true
}
