package postgres

import (
	"context"
	"fmt"
	"strings"
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

// applyChunk bounds the rows of one INSERT statement, so that a large snapshot does not
// become one multi-megabyte statement.
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

// bindSource locks the binding and checks it against source, binding the copy if it is bound
// to nothing. Every hand-over takes this lock, so a DELETE of the binding and a hand-over from
// the old source cannot interleave.
func bindSource(ctx context.Context, tx bun.Tx, source string) error {
	var bound []string
	if err := tx.NewRaw("SELECT source FROM source_binding FOR UPDATE").Scan(ctx, &bound); err != nil {
		return err
	}
	if len(bound) == 0 {
		_, err := tx.NewRaw("INSERT INTO source_binding (source) VALUES (?) ON CONFLICT (one) DO NOTHING", source).Exec(ctx)
		return err
	}
	if bound[0] != source {
		return fmt.Errorf("%w: the copy is made from source %s and this comes from source %s; if the new source is right, "+
			"DELETE /internal/source to accept it (the next reconcile then makes the copy equal to it)", attendee.ErrSourceMismatch, bound[0], source)
	}
	return nil
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

// repairSQL overrules the version guard, and only where the copy still holds the version the
// repair was decided on: a change applied in between is never undone.
const repairSQL = `UPDATE conference_vos AS v SET
    import_href   = CASE WHEN ?2 THEN v.import_href ELSE ?5 END,
    name          = CASE WHEN ?2 THEN v.name ELSE ?6 END,
    starts        = CASE WHEN ?2 THEN v.starts ELSE ?7::timestamptz END,
    ends          = CASE WHEN ?2 THEN v.ends ELSE ?8::timestamptz END,
    max_attendees = CASE WHEN ?2 THEN v.max_attendees ELSE ?9 END,
    version       = ?3,
    deleted       = ?2,
    event_id      = ?4,
    occurred_at   = ?10::timestamptz,
    applied_at    = clock_timestamp()
WHERE conference_id = ?0 AND version = ?1`

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
		for _, r := range repairs {
			// id, replaces, deleted, version, event_id, import_href, name, starts, ends,
			// max_attendees, occurred_at: the placeholders ?0…?10 of repairSQL.
			args := []any{r.ConferenceID, r.Replaces, true, int64(0), "", "", "", nil, nil, 0, time.Now().UTC()}
			if r.Change != nil {
				e := r.Change.Event()
				args[2], args[3], args[4], args[5], args[10] = e.Type == changeevent.Deleted, e.Version, e.ID, attendee.ImportHref(e), e.OccurredAt.UTC()
				if e.Data != nil {
					args[6], args[7], args[8], args[9] = e.Data.Name, e.Data.Starts.UTC(), e.Data.Ends.UTC(), e.Data.MaxAttendees
				}
			}
			out, err := tx.NewRaw(repairSQL, args...).Exec(ctx)
			if err != nil {
				return err
			}
			n, err := out.RowsAffected()
			if err != nil {
				return err
			}
			res.Applied += int(n)
		}
		return nil
	})
	if err != nil {
		return attendee.ApplyResult{}, fmt.Errorf("repair %d conferences from source %s: %w", len(repairs), source, translate(err))
	}
	return res, nil
}

// upsertSQL keeps a tombstone's last known data: attendees of a deleted conference still show
// its name.
const upsertSQL = `INSERT INTO conference_vos AS v
    (conference_id, import_href, name, starts, ends, max_attendees, version, deleted, event_id, occurred_at, applied_at)
VALUES %s
ON CONFLICT (conference_id) DO UPDATE SET
    import_href     = CASE WHEN EXCLUDED.deleted THEN v.import_href ELSE EXCLUDED.import_href END,
    name            = CASE WHEN EXCLUDED.deleted THEN v.name ELSE EXCLUDED.name END,
    starts          = CASE WHEN EXCLUDED.deleted THEN v.starts ELSE EXCLUDED.starts END,
    ends            = CASE WHEN EXCLUDED.deleted THEN v.ends ELSE EXCLUDED.ends END,
    max_attendees   = CASE WHEN EXCLUDED.deleted THEN v.max_attendees ELSE EXCLUDED.max_attendees END,
    version         = EXCLUDED.version,
    deleted         = EXCLUDED.deleted,
    event_id        = EXCLUDED.event_id,
    occurred_at     = EXCLUDED.occurred_at,
    applied_at      = clock_timestamp()
WHERE v.version < EXCLUDED.version
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
		values.WriteString("(?, ?, ?, ?::timestamptz, ?::timestamptz, ?, ?, ?, ?, ?::timestamptz, clock_timestamp())")
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
