package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/syncer/changeevent"
)

// Store reads and writes the attendee context. It works on a *bun.DB or inside a bun.Tx.
type Store struct {
	db bun.IDB
}

// NewStore returns a Store over db.
func NewStore(db bun.IDB) *Store { return &Store{db: db} }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.NewRaw("SELECT 1").Scan(ctx, &one); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// inTx runs fn in a transaction. RunInTx returns the errors of BEGIN and COMMIT as the
// driver gave them (a backend terminated between statements fails there, 57P01), so they are
// translated here like every other statement's, and answer 503 rather than 500.
func (s *Store) inTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	err := s.db.RunInTx(ctx, nil, fn)
	if err == nil || errors.Is(err, attendee.ErrNotFound) || errors.Is(err, attendee.ErrConflict) ||
		errors.Is(err, attendee.ErrInvalid) || errors.Is(err, attendee.ErrUnavailable) {
		return err
	}
	return translate(err)
}

// applyChunk bounds the rows of one INSERT statement, so that a large snapshot does not
// become one multi-megabyte statement.
const applyChunk = 500

// ApplyChanges applies a batch of conference changes to conference_vos in one transaction. It
// is the only writer of that table: the stream consumer, the internal endpoint and the
// reconcile snapshot all come through here.
//
// It is idempotent and order-safe. A change is applied only when its version is newer than the
// row's, so duplicates and late arrivals change nothing; a delete leaves a tombstone that keeps
// its version, so an older update cannot bring the conference back. Changes of one conference
// within the batch are reduced to the newest first.
//
// A complete batch (a snapshot) also tombstones every live conference it does not list. Such a
// tombstone keeps the row's version and is marked as inferred: a change of that same version
// lifts it again, because the absence may have been a race with the conference's creation
// rather than a delete, and the next snapshot or change then repairs it.
func (s *Store) ApplyChanges(ctx context.Context, b attendee.Batch) (attendee.ApplyResult, error) {
	changes, err := b.Normalize()
	if err != nil {
		return attendee.ApplyResult{}, err
	}
	res := attendee.ApplyResult{Changes: len(changes)}
	if len(changes) == 0 {
		return res, nil
	}
	if !b.Complete && len(changes) <= applyChunk {
		// One statement is atomic on its own: no BEGIN and COMMIT round trips on the way of
		// every change (the stream consumer's batches almost always land here).
		lags, err := upsertChanges(ctx, s.db, changes)
		if err != nil {
			return attendee.ApplyResult{}, fmt.Errorf("apply %d conference changes: %w", len(changes), translate(err))
		}
		res.Applied, res.Lags = len(lags), lags
		return res, nil
	}
	err = s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res.Applied, res.Tombstoned, res.Lags = 0, 0, nil
		for start := 0; start < len(changes); start += applyChunk {
			lags, err := upsertChanges(ctx, tx, changes[start:min(start+applyChunk, len(changes))])
			if err != nil {
				return err
			}
			res.Applied += len(lags)
			res.Lags = append(res.Lags, lags...)
		}
		if !b.Complete {
			return nil
		}
		n, err := tombstoneAbsent(ctx, tx, changes, b.TakenAt)
		res.Tombstoned = n
		return err
	})
	if err != nil {
		return attendee.ApplyResult{}, fmt.Errorf("apply %d conference changes: %w", len(changes), translate(err))
	}
	return res, nil
}

// upsertSQL keeps a tombstone's last known data: attendees of a deleted conference still show
// its name.
const upsertSQL = `INSERT INTO conference_vos AS v
    (conference_id, import_href, name, starts, ends, max_attendees, version, deleted, inferred_delete, event_id, occurred_at, applied_at)
VALUES %s
ON CONFLICT (conference_id) DO UPDATE SET
    import_href     = CASE WHEN EXCLUDED.deleted THEN v.import_href ELSE EXCLUDED.import_href END,
    name            = CASE WHEN EXCLUDED.deleted THEN v.name ELSE EXCLUDED.name END,
    starts          = CASE WHEN EXCLUDED.deleted THEN v.starts ELSE EXCLUDED.starts END,
    ends            = CASE WHEN EXCLUDED.deleted THEN v.ends ELSE EXCLUDED.ends END,
    max_attendees   = CASE WHEN EXCLUDED.deleted THEN v.max_attendees ELSE EXCLUDED.max_attendees END,
    version         = EXCLUDED.version,
    deleted         = EXCLUDED.deleted,
    inferred_delete = false,
    event_id        = EXCLUDED.event_id,
    occurred_at     = EXCLUDED.occurred_at,
    applied_at      = clock_timestamp()
WHERE v.version < EXCLUDED.version
   OR (v.version = EXCLUDED.version AND v.inferred_delete AND NOT EXCLUDED.deleted)
RETURNING conference_id, extract(epoch FROM applied_at - occurred_at)::float8 AS lag_seconds`

// upsertChanges writes changes, sorted by conference id so that concurrent batches lock rows
// in the same order, and returns the propagation lag of each row it changed.
func upsertChanges(ctx context.Context, tx bun.IDB, changes []changeevent.Event) ([]time.Duration, error) {
	var values strings.Builder
	args := make([]any, 0, len(changes)*10)
	for i, e := range changes {
		if i > 0 {
			values.WriteString(",\n")
		}
		values.WriteString("(?, ?, ?, ?::timestamptz, ?::timestamptz, ?, ?, ?, false, ?, ?::timestamptz, clock_timestamp())")
		var (
			name         string
			starts, ends any // NULL for a delete
			maxAttendees int
		)
		if e.Data != nil {
			name, starts, ends, maxAttendees = e.Data.Name, e.Data.Starts.UTC(), e.Data.Ends.UTC(), e.Data.MaxAttendees
		}
		args = append(args, e.ConferenceID, attendee.ImportHref(e), name, starts, ends, maxAttendees,
			e.Version, e.Type == changeevent.Deleted, e.ID, e.OccurredAt.UTC())
	}
	var rows []struct {
		ConferenceID int64   `bun:"conference_id"`
		LagSeconds   float64 `bun:"lag_seconds"`
	}
	if err := tx.NewRaw(fmt.Sprintf(upsertSQL, values.String()), args...).Scan(ctx, &rows); err != nil {
		return nil, err
	}
	lags := make([]time.Duration, len(rows))
	for i, r := range rows {
		lags[i] = time.Duration(r.LagSeconds * float64(time.Second))
	}
	return lags, nil
}

// tombstoneAbsent marks every live conference that a complete batch does not list as deleted,
// locking the rows in id order like upsertChanges does.
//
// With takenAt set, a row whose last change happened at the source after that moment is
// spared: the snapshot was read before the conference existed (or before that change), so its
// absence proves nothing. The next snapshot, or the delete event, settles it.
func tombstoneAbsent(ctx context.Context, tx bun.Tx, present []changeevent.Event, takenAt time.Time) (int, error) {
	ids := make([]int64, len(present))
	for i, e := range present {
		ids[i] = e.ConferenceID
	}
	var (
		occurred any = bun.Safe("clock_timestamp()")
		before   any = bun.Safe("'infinity'::timestamptz")
	)
	if !takenAt.IsZero() {
		occurred, before = takenAt.UTC(), takenAt.UTC()
	}
	var gone []int64
	err := tx.NewRaw(`UPDATE conference_vos SET
    deleted = true, inferred_delete = true, event_id = '', occurred_at = ?, applied_at = clock_timestamp()
WHERE conference_id IN (
    SELECT conference_id FROM conference_vos
    WHERE NOT deleted AND NOT (conference_id = ANY (?::bigint[])) AND occurred_at < ?::timestamptz
    ORDER BY conference_id FOR UPDATE)
RETURNING conference_id`, occurred, pgdialect.Array(ids), before).Scan(ctx, &gone)
	if err != nil {
		return 0, err
	}
	return len(gone), nil
}

// ListConferences returns the live conferences, by id.
func (s *Store) ListConferences(ctx context.Context) ([]attendee.Conference, error) {
	return s.listConferences(ctx, "NOT deleted")
}

// ListConferenceCopies returns every row of conference_vos, tombstones included, by id: what
// the syncer and the comparison check against the source.
func (s *Store) ListConferenceCopies(ctx context.Context) ([]attendee.Conference, error) {
	return s.listConferences(ctx, "TRUE")
}

func (s *Store) listConferences(ctx context.Context, where string) ([]attendee.Conference, error) {
	var rows []conferenceRow
	if err := s.db.NewSelect().Model(&rows).Where(where).Order("conference_id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list conferences: %w", translate(err))
	}
	out := make([]attendee.Conference, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, nil
}

// GetConference returns the copy of conference id, tombstone or not.
func (s *Store) GetConference(ctx context.Context, id int64) (attendee.Conference, error) {
	var row conferenceRow
	if err := s.db.NewSelect().Model(&row).Where("conference_id = ?", id).Scan(ctx); err != nil {
		return attendee.Conference{}, fmt.Errorf("conference %d: %w", id, translate(err))
	}
	return row.domain(), nil
}
