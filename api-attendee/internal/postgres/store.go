package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/pgschema"
	"conferencego/syncer/changeevent"
)

// Store reads and writes the attendee context. It works on a *bun.DB or inside a bun.Tx;
// Ping and inTx are pgschema's, which both services' stores share.
type Store struct {
	db bun.IDB
}

// NewStore returns a Store over db.
func NewStore(db bun.IDB) *Store { return &Store{db: db} }

// Ping is /readyz's question to the database.
func (s *Store) Ping(ctx context.Context) error { return pgschema.Ping(ctx, s.db) }

// inTx is pgschema.InTx with this schema's translate.
func (s *Store) inTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	return pgschema.InTx(ctx, s.db, translate, fn)
}

// applyChunk bounds the rows of one upsert, so that a large snapshot does not become one
// multi-megabyte message.
const applyChunk = 500

// ApplyChanges applies a batch of conference changes to conference_vos in one transaction. It
// is the only writer of that table for ordinary changes: the stream consumer and the internal
// endpoint both come through here (a Repair is the one exception, and says why).
//
// It is idempotent and order-safe. A change is applied only when its version is newer than the
// row's, so duplicates and late arrivals change nothing; a delete leaves a tombstone that keeps
// its version, so an older update cannot bring the conference back. Changes of one conference
// within the batch are reduced to the newest first. b's changes were checked where they came
// in (attendee.Change), so nothing is validated here.
func (s *Store) ApplyChanges(ctx context.Context, b attendee.Batch) (attendee.ApplyResult, error) {
	changes := b.Normalize()
	res := attendee.ApplyResult{Changes: len(changes)}
	if len(changes) == 0 {
		return res, nil
	}
	if len(changes) <= applyChunk {
		// One statement is atomic on its own: no BEGIN and COMMIT round trips on the way of
		// every change (the stream consumer's batches almost always land here).
		lags, err := upsertChanges(ctx, s.db, changes)
		if err != nil {
			return attendee.ApplyResult{}, fmt.Errorf("apply %d conference changes: %w", len(changes), translate(err))
		}
		res.Applied, res.Lags = len(lags), lags
		return res, nil
	}
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res.Applied, res.Lags = 0, nil
		return applyChunks(ctx, tx, changes, &res)
	})
	if err != nil {
		return attendee.ApplyResult{}, fmt.Errorf("apply %d conference changes: %w", len(changes), translate(err))
	}
	return res, nil
}

func applyChunks(ctx context.Context, tx bun.IDB, changes []changeevent.Event, res *attendee.ApplyResult) error {
	for start := 0; start < len(changes); start += applyChunk {
		lags, err := upsertChanges(ctx, tx, changes[start:min(start+applyChunk, len(changes))])
		if err != nil {
			return err
		}
		res.Applied += len(lags)
		res.Lags = append(res.Lags, lags...)
	}
	return nil
}

// ApplyHandover applies changes that come from source, in one transaction with the check that
// the copy is made from that source (binding it to source if it is bound to none yet). A copy
// bound to another source refuses with an error wrapping attendee.ErrSourceMismatch.
func (s *Store) ApplyHandover(ctx context.Context, source string, b attendee.Batch) (attendee.ApplyResult, error) {
	changes := b.Normalize()
	res := attendee.ApplyResult{Changes: len(changes)}
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := bindSource(ctx, tx, source); err != nil {
			return err
		}
		res.Applied, res.Lags = 0, nil
		return applyChunks(ctx, tx, changes, &res)
	})
	if err != nil {
		return attendee.ApplyResult{}, fmt.Errorf("apply %d changes from source %s: %w", len(changes), source, translate(err))
	}
	return res, nil
}

// Binding returns the source the copy is bound to, and when; "" while it is bound to none.
func (s *Store) Binding(ctx context.Context) (string, time.Time, error) {
	var rows []struct {
		Source  string    `bun:"source"`
		BoundAt time.Time `bun:"bound_at"`
	}
	if err := s.db.NewRaw("SELECT source, bound_at FROM source_binding").Scan(ctx, &rows); err != nil {
		return "", time.Time{}, fmt.Errorf("read the source binding: %w", translate(err))
	}
	if len(rows) == 0 {
		return "", time.Time{}, nil
	}
	return rows[0].Source, rows[0].BoundAt.UTC(), nil
}

// Unbind forgets the source the copy is bound to and returns it ("" if none).
func (s *Store) Unbind(ctx context.Context) (string, error) {
	var old []string
	if err := s.db.NewRaw("DELETE FROM source_binding RETURNING source").Scan(ctx, &old); err != nil {
		return "", fmt.Errorf("remove the source binding: %w", translate(err))
	}
	if len(old) == 0 {
		return "", nil
	}
	return old[0], nil
}

// Repair applies repairs from source in one transaction, with the same source check as
// ApplyHandover, and returns how many rows it changed.
func (s *Store) Repair(ctx context.Context, source string, repairs []attendee.Repair) (attendee.ApplyResult, error) {
	repairs, err := attendee.CheckRepairs(repairs)
	if err != nil {
		return attendee.ApplyResult{}, err
	}
	res := attendee.ApplyResult{Changes: len(repairs)}
	err = s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := bindSource(ctx, tx, source); err != nil {
			return err
		}
		n, err := repairRows(ctx, tx, repairs)
		res.Applied = n
		return err
	})
	if err != nil {
		return attendee.ApplyResult{}, fmt.Errorf("repair %d conferences from source %s: %w", len(repairs), source, translate(err))
	}
	return res, nil
}

// ListConferenceVOs returns up to limit live ConferenceVOs with ids above after, by id, and whether
// more follow: what registration offers.
func (s *Store) ListConferenceVOs(ctx context.Context, after int64, limit int) ([]attendee.ConferenceVO, bool, error) {
	out, err := s.listConferences(ctx, "NOT deleted AND conference_id > ?", after, limit+1)
	if err != nil {
		return nil, false, err
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// ListConferenceVOsWithTombstones returns rows of conference_vos with ids above after, tombstones
// included, by id, at most limit of them (0: all): what the syncer and the comparison check
// against the source.
func (s *Store) ListConferenceVOsWithTombstones(ctx context.Context, after int64, limit int) ([]attendee.ConferenceVO, error) {
	return s.listConferences(ctx, "conference_id > ?", after, limit)
}

func (s *Store) listConferences(ctx context.Context, where string, arg any, limit int) ([]attendee.ConferenceVO, error) {
	var rows []conferenceRow
	q := s.db.NewSelect().Model(&rows).Where(where, arg).Order("conference_id")
	if limit > 0 {
		q = q.Limit(int64(limit))
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list conferences: %w", translate(err))
	}
	out := make([]attendee.ConferenceVO, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}

// GetConferenceVO returns the copy of conference id, tombstone or not.
func (s *Store) GetConferenceVO(ctx context.Context, id int64) (attendee.ConferenceVO, error) {
	var row conferenceRow
	if err := s.db.NewSelect().Model(&row).Where("conference_id = ?", id).Scan(ctx); err != nil {
		return attendee.ConferenceVO{}, fmt.Errorf("conference %d: %w", id, translate(err))
	}
	return row.domain(), nil
}
