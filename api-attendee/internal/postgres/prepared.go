package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/pgschema"
	"conferencego/syncer/changeevent"
)

// The writes of the apply path (the upsert of changes, the repair, the source binding) are
// constant SQL texts with $n placeholders, run through pgx's statement cache (pgschema.Cached):
// the pool's default is the simple protocol, under which bun renders every argument into the
// text and Postgres parses and plans each statement anew. Each connection prepares a text once
// and later only binds and executes it. A batch of any size is the one upsert text, its rows
// passed as one array per column, so the cache holds one statement and not one per size.

// upsertSQL keeps a tombstone's last known data: attendees of a deleted conference still show
// its name. The arrays are the columns of the rows, in the order of the column list.
const upsertSQL = `INSERT INTO conference_vos AS v
    (conference_id, import_href, name, starts, ends, max_attendees, version, deleted, event_id, occurred_at, applied_at)
SELECT r.*, clock_timestamp()
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],
            $6::integer[], $7::bigint[], $8::boolean[], $9::text[], $10::timestamptz[]) AS r
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
RETURNING extract(epoch FROM applied_at - occurred_at)::float8`

// upsertArgs are the column arrays of upsertSQL.
type upsertArgs struct {
	ids, versions         []int64
	hrefs, names, eventID []string
	starts, ends          []*time.Time // NULL for a delete
	maxAttendees          []int
	deleted               []bool
	occurredAt            []time.Time
}

func upsertArgsOf(changes []changeevent.Event) upsertArgs {
	n := len(changes)
	a := upsertArgs{
		ids: make([]int64, n), versions: make([]int64, n),
		hrefs: make([]string, n), names: make([]string, n), eventID: make([]string, n),
		starts: make([]*time.Time, n), ends: make([]*time.Time, n),
		maxAttendees: make([]int, n), deleted: make([]bool, n), occurredAt: make([]time.Time, n),
	}
	for i, e := range changes {
		a.ids[i], a.versions[i], a.eventID[i] = e.ConferenceID, e.Version, e.ID
		a.hrefs[i], a.deleted[i], a.occurredAt[i] = attendee.ImportHref(e), e.Type == changeevent.Deleted, e.OccurredAt.UTC()
		if d := e.Data; d != nil {
			starts, ends := d.Starts.UTC(), d.Ends.UTC()
			a.names[i], a.starts[i], a.ends[i], a.maxAttendees[i] = d.Name, &starts, &ends, d.MaxAttendees
		}
	}
	return a
}

// upsertChanges writes changes, sorted by conference id so that concurrent batches lock rows
// in the same order, and returns the propagation lag of each row it changed.
func upsertChanges(ctx context.Context, db bun.IDB, changes []changeevent.Event) (lags []time.Duration, err error) {
	q, err := pgschema.SQLOf(db)
	if err != nil {
		return nil, err
	}
	a := upsertArgsOf(changes)
	rows, err := q.QueryContext(ctx, upsertSQL, pgschema.Cached, a.ids, a.hrefs, a.names, a.starts, a.ends,
		a.maxAttendees, a.versions, a.deleted, a.eventID, a.occurredAt)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
	}()
	for rows.Next() {
		var seconds float64
		if err := rows.Scan(&seconds); err != nil {
			return nil, err
		}
		lags = append(lags, time.Duration(seconds*float64(time.Second)))
	}
	return lags, rows.Err()
}

// repairSQL overrules the version guard, and only where the copy still holds the version the
// repair was decided on: a change applied in between is never undone.
const repairSQL = `UPDATE conference_vos AS v SET
    import_href   = CASE WHEN $3::boolean THEN v.import_href ELSE $6::text END,
    name          = CASE WHEN $3 THEN v.name ELSE $7::text END,
    starts        = CASE WHEN $3 THEN v.starts ELSE $8::timestamptz END,
    ends          = CASE WHEN $3 THEN v.ends ELSE $9::timestamptz END,
    max_attendees = CASE WHEN $3 THEN v.max_attendees ELSE $10::integer END,
    version       = $4::bigint,
    deleted       = $3,
    event_id      = $5::text,
    occurred_at   = $11::timestamptz,
    applied_at    = clock_timestamp()
WHERE conference_id = $1::bigint AND version = $2::bigint`

// repairRows runs repairSQL for each of repairs in tx and returns how many rows it changed.
func repairRows(ctx context.Context, tx bun.Tx, repairs []attendee.Repair) (int, error) {
	q, err := pgschema.SQLOf(tx)
	if err != nil {
		return 0, err
	}
	changed := 0
	for _, r := range repairs {
		// id, replaces, deleted, version, event_id, import_href, name, starts, ends,
		// max_attendees, occurred_at: the placeholders $1…$11 of repairSQL.
		args := []any{pgschema.Cached, r.ConferenceID, r.Replaces, true, int64(0), "", "", "", nil, nil, 0, time.Now().UTC()}
		if r.Change != nil {
			e := r.Change.Event()
			args[3], args[4], args[5], args[6], args[11] = e.Type == changeevent.Deleted, e.Version, e.ID, attendee.ImportHref(e), e.OccurredAt.UTC()
			if e.Data != nil {
				args[7], args[8], args[9], args[10] = e.Data.Name, e.Data.Starts.UTC(), e.Data.Ends.UTC(), e.Data.MaxAttendees
			}
		}
		out, err := q.ExecContext(ctx, repairSQL, args...)
		if err != nil {
			return changed, err
		}
		n, err := out.RowsAffected()
		if err != nil {
			return changed, err
		}
		changed += int(n)
	}
	return changed, nil
}

const (
	lockBindingSQL = `SELECT source FROM source_binding FOR UPDATE`
	bindSQL        = `INSERT INTO source_binding (source) VALUES ($1::text) ON CONFLICT (one) DO NOTHING`
)

// bindSource locks the binding and checks it against source, binding the copy if it is bound
// to nothing. Every hand-over takes this lock, so a DELETE of the binding and a hand-over from
// the old source cannot interleave.
func bindSource(ctx context.Context, tx bun.Tx, source string) error {
	q, err := pgschema.SQLOf(tx)
	if err != nil {
		return err
	}
	var bound string
	switch err := q.QueryRowContext(ctx, lockBindingSQL, pgschema.Cached).Scan(&bound); {
	case errors.Is(err, sql.ErrNoRows):
		_, err := q.ExecContext(ctx, bindSQL, pgschema.Cached, source)
		return err
	case err != nil:
		return err
	}
	if bound != source {
		return fmt.Errorf("%w: the copy is made from source %s and this comes from source %s; if the new source is right, "+
			"DELETE /internal/source to accept it (the next reconcile then makes the copy equal to it)", attendee.ErrSourceMismatch, bound, source)
	}
	return nil
}
