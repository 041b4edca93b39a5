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

// Pruner removes old outbox rows every Interval until its context ends.
type Pruner struct {
	Store     *Store
	Log       *slog.Logger
	Retention time.Duration
	Interval  time.Duration
}

// pruneBatch bounds one DELETE, so that pruning a large backlog never holds many locks long.
const pruneBatch = 10000

// Run prunes until ctx ends. Failures are logged and retried at the next interval.
func (p Pruner) Run(ctx context.Context) {
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		var total int64
		for {
			n, err := p.Store.PruneOutbox(ctx, p.Retention, pruneBatch)
			if err != nil {
				if ctx.Err() == nil {
					p.Log.Warn("pruning the outbox failed; retrying at the next interval", "err", err)
				}
				break
			}
			total += n
			if n < pruneBatch {
				break
			}
		}
		if total > 0 {
			p.Log.Info("pruned old outbox rows", "rows", total, "older_than", p.Retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
