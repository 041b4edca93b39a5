package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// PruneOutbox deletes outbox rows older than retention, at most limit of them, and returns how
// many it deleted.
//
// In push mode the relay deletes rows as soon as Redis has them, so nothing old is left. In
// pull mode nobody reads the outbox, and without pruning it would grow forever. A row pruned
// before it was published (a relay stopped for longer than the retention) is made up for by
// the reconcile every syncer runs when it starts.
func (s *Store) PruneOutbox(ctx context.Context, retention time.Duration, limit int) (int64, error) {
	res, err := s.db.NewRaw(`DELETE FROM outbox WHERE id IN (
		SELECT id FROM outbox WHERE occurred_at < clock_timestamp() - ?::interval ORDER BY id LIMIT ?
		FOR UPDATE SKIP LOCKED)`, fmt.Sprintf("%d microseconds", retention.Microseconds()), limit).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune outbox: %w", translate(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune outbox: %w", err)
	}
	return n, nil
}

// Pruner removes old outbox rows and old tombstones every Interval until its context ends.
type Pruner struct {
	Store *Store
	Log   *slog.Logger
	// Retention is how long outbox rows are kept; 0 keeps them.
	Retention time.Duration
	// TombstoneRetention is how long tombstones are kept; 0 keeps them.
	TombstoneRetention time.Duration
	Interval           time.Duration
}

// pruneBatch bounds one DELETE, so that pruning a large backlog never holds many locks long.
const pruneBatch = 10000

// Run prunes until ctx ends. Failures are logged and retried at the next interval.
func (p Pruner) Run(ctx context.Context) {
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		if p.Retention > 0 {
			if total := p.prune(ctx, "outbox rows", p.Store.PruneOutbox, p.Retention); total > 0 {
				p.Log.Info("pruned old outbox rows", "rows", total, "older_than", p.Retention.String())
			}
		}
		if p.TombstoneRetention > 0 {
			if total := p.prune(ctx, "tombstones", p.Store.PruneTombstones, p.TombstoneRetention); total > 0 {
				p.Log.Info("pruned old tombstones", "rows", total, "older_than", p.TombstoneRetention.String())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// prune runs fn in batches until a batch is short, and returns how many rows went.
func (p Pruner) prune(ctx context.Context, what string, fn func(context.Context, time.Duration, int) (int64, error), retention time.Duration) int64 {
	var total int64
	for {
		n, err := fn(ctx, retention, pruneBatch)
		if err != nil {
			if ctx.Err() == nil {
				p.Log.Warn("pruning failed; retrying at the next interval", "what", what, "err", err)
			}
			return total
		}
		total += n
		if n < pruneBatch {
			return total
		}
	}
}
