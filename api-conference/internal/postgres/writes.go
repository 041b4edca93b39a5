package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"conferencego/api-conference/internal/conference"
	"conferencego/pgschema"
	"conferencego/service/domainerr"
	"conferencego/syncer/changeevent"
)

// A conference's create, update and delete are each one prepared statement, its own
// transaction: the row, its outbox row, the change marker's slot and (with NotifyCommit) the
// relay's NOTIFY, returning what the answer needs. Validated in Go first; what depends on the
// stored row is checked by the database on the row it writes, so nothing is read before the
// write and no read can be stale by the time of the write:
//
//   - a create reads the location FOR KEY SHARE before it inserts: the location cannot be
//     deleted before the create commits, and a rename in progress (UpdateLocation holds the
//     location FOR UPDATE) is waited for, so the payload has the name the rename's cascade,
//     which cannot see the new conference, would have given it;
//   - an update that is given a location locks it FOR KEY SHARE before the conference's row,
//     as a create does and in the order a rename's cascade locks them (the other order
//     deadlocks when a move races a rename); it then reads its location through location_now
//     (migration 0009), with a snapshot of its own, so not older than a rename whose cascade
//     it waited for, and without a lock where it was given none (the rename holding the
//     location may be waiting for this conference's row);
//   - an update's new ends against the stored starts is the conferences_check constraint, and
//     its new location the foreign key;
//   - an update that changes nothing matches no row (IS DISTINCT FROM), so it makes no version
//     and no event; a second, read-only statement then tells it from an unknown id.

// payloadSQL builds the outbox payload (changeevent.Conference, as changeevent.MarshalData
// writes Conference.Payload) of conference c at location l. jsonb keeps no formatting of its
// own, so equal values are equal bytes whoever builds them; times are written as Go writes
// RFC 3339 with nanoseconds in UTC, trailing zeros of the fraction dropped. A field added to
// Payload must be added here: TestWritePayloadIsMarshalData fails until it is.
const payloadSQL = `jsonb_build_object(
        'id', c.id, 'href', '/api/conferences/' || c.id || '/', 'name', c.name,
        'starts', rtrim(rtrim(to_char(c.starts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '0'), '.') || 'Z',
        'ends', rtrim(rtrim(to_char(c.ends AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '0'), '.') || 'Z',
        'max_attendees', c.max_attendees,
        'location', jsonb_build_object('name', l.name, 'city', l.city, 'state', l.state))`

// returnedRow is what a write returns of the conference, as conferenceSelect reads it.
const returnedRow = `id, name, starts, ends, description, max_presentations, max_attendees, location_id, version, created, updated`

// outboxAndMarker are the CTEs every create and update ends with: the event of c at l ({event},
// per transport) and the bump of c's change-marker slot.
func outboxAndMarker(typ changeevent.Type) string {
	return `, o AS (
    {event}
    SELECT c.id, '` + string(typ) + `', c.version, ` + payloadSQL + ` FROM c, l
), m AS (
    UPDATE change_marker SET n = n + 1 WHERE slot = (SELECT c.id % ` + fmt.Sprint(markerSlots) + ` FROM c)
)
SELECT ` + conferenceSelect + `, {notify} FROM c, l`
}

// createTemplate inserts from the locked location, so no row back means no such location.
var createTemplate = `WITH l AS (
    SELECT ` + locationReturned + ` FROM locations WHERE id = $7 FOR KEY SHARE
), c AS (
    INSERT INTO conferences (name, starts, ends, description, max_presentations, max_attendees, location_id)
    SELECT $1::text, $2::timestamptz, $3::timestamptz, $4::text, $5::int, $6::int, l.id FROM l
    RETURNING ` + returnedRow + `
)` + outboxAndMarker(changeCreated)

const locationReturned = `id, name, city, room_count, state, picture_url, created, updated`

// updateSetSQL are an update's new values: the fields not given ($n NULL) keep theirs.
const updateSetSQL = `coalesce($2::text, name), coalesce($3::timestamptz, starts), coalesce($4::timestamptz, ends),
        coalesce($5::text, description), coalesce($6::int, max_presentations),
        coalesce($7::int, max_attendees), coalesce($8::bigint, location_id)`

// updateTemplate changes conference $1 if the new values differ from the stored ones, one
// version up. A location given is locked first (given: the subquery in old's WHERE runs before
// old's scan), then the conference's row (old), in the order a rename takes them.
var updateTemplate = `WITH given AS (
    SELECT id FROM locations WHERE id = $8 FOR KEY SHARE
), old AS (
    SELECT id AS old_id FROM conferences WHERE id = $1 AND (SELECT count(*) FROM given) >= 0 FOR NO KEY UPDATE
), c AS (
    UPDATE conferences SET
        (name, starts, ends, description, max_presentations, max_attendees, location_id) = (` + updateSetSQL + `),
        version = version + 1, updated = now()
    FROM old
    WHERE id = old_id AND (name, starts, ends, description, max_presentations, max_attendees, location_id)
        IS DISTINCT FROM (` + updateSetSQL + `)
    RETURNING ` + returnedRow + `
), l AS (
    SELECT ` + locationReturned + ` FROM location_now((SELECT c.location_id FROM c))
)` + outboxAndMarker(changeUpdated)

// deleteTemplate records the delete at the next version, so a late update can never outrank
// it downstream; the presentations go with the conference (ON DELETE CASCADE).
var deleteTemplate = `WITH c AS (
    DELETE FROM conferences WHERE id = $1 RETURNING id, version
), o AS (
    {event}
    SELECT c.id, '` + string(changeevent.Deleted) + `', c.version + 1, NULL::jsonb FROM c
), m AS (
    UPDATE change_marker SET n = n + 1 WHERE slot = (SELECT c.id % ` + fmt.Sprint(markerSlots) + ` FROM c)
)
SELECT c.id, {notify} FROM c`

// The two transports of a write's event. {event} is followed by a SELECT of the event's
// conference id, type, version and payload:
//
//   - the outbox table inserts them as a row, which the relay claims and deletes;
//   - logical decoding emits them as a transactional message (changeevent.MessagePrefix) that
//     the relay reads from a replication slot: no row to write, claim or delete. A CTE that
//     only reads is run only if the statement reads it, so the last column counts its one
//     message; it is in the log only if the write commits.
const (
	eventTable   = `INSERT INTO outbox (conference_id, type, version, payload)`
	eventLogical = `SELECT pg_logical_emit_message(true, '` + changeevent.MessagePrefix + `', jsonb_build_object(
        'event_id', gen_random_uuid(), 'type', e.type, 'conference_id', e.id, 'version', e.version,
        'occurred_at', clock_timestamp(), 'data', e.payload)::text)
    FROM (`
	eventLogicalEnd = `) AS e (id, type, version, payload)`
)

// writeSQL is a write's statement per emitter: with NotifyCommit it notifies the relay
// (delivered at commit, and only if it commits); with emitLogical it emits a message instead
// of the outbox row; otherwise it writes the row and does not notify.
type writeSQL map[emitter]string

// emitter is how a Store's writes hand their events on: a NotifyMode of the outbox table, or
// emitLogical.
type emitter string

const emitLogical emitter = "logical"

func newWriteSQL(template string) writeSQL {
	notify := `pg_notify('` + changeevent.NotifyChannel + `', '') IS NULL`
	table := strings.Replace(template, "{event}", eventTable, 1)
	// The logical form wraps {event}'s SELECT, which ends at the CTE's closing parenthesis.
	at := strings.Index(template, "{event}")
	end := at + strings.Index(template[at:], "\n), m AS")
	logical := template[:at] + eventLogical + template[at+len("{event}"):end] + eventLogicalEnd + template[end:]
	return writeSQL{
		emitter(NotifyCommit): strings.Replace(table, "{notify}", notify, 1),
		emitter(NotifyAfter):  strings.Replace(table, "{notify}", "false", 1),
		emitter(NotifyOff):    strings.Replace(table, "{notify}", "false", 1),
		emitLogical:           strings.Replace(logical, "{notify}", "(SELECT count(*) FROM o) = 1", 1),
	}
}

var (
	createSQL = newWriteSQL(createTemplate)
	updateSQL = newWriteSQL(updateTemplate)
	deleteSQL = newWriteSQL(deleteTemplate)
)

// CreateConference validates and stores a new conference at version 1, with its outbox row.
func (s *Store) CreateConference(ctx context.Context, p conference.ConferencePatch) (conference.Conference, error) {
	c, err := domainerr.Whole[conference.Conference](p)
	if err != nil {
		return conference.Conference{}, err
	}
	row, err := s.writeOne(ctx, createSQL,
		c.Name, c.Starts, c.Ends, c.Description, c.MaxPresentations, c.MaxAttendees, c.LocationID)
	if errors.Is(err, sql.ErrNoRows) {
		return conference.Conference{}, conference.Invalid("location", fmt.Sprintf("no location with id %d", c.LocationID))
	}
	if err != nil {
		return conference.Conference{}, fmt.Errorf("create conference: %w", translateWrite(err, c.LocationID))
	}
	s.wrote()
	return row.domain(), nil
}

// UpdateConference applies p to conference id, validating the result as a whole (so a new
// ends is checked against the stored starts), and bumps its version by one; an update that
// changes nothing makes no version and answers the conference as it is.
func (s *Store) UpdateConference(ctx context.Context, id int64, p conference.ConferencePatch) (conference.Conference, error) {
	var v conference.ValidationError
	p.Check(&v)
	if err := v.Err(); err != nil {
		return conference.Conference{}, err
	}
	row, err := s.writeOne(ctx, updateSQL,
		id, p.Name, p.Starts, p.Ends, p.Description, p.MaxPresentations, p.MaxAttendees, p.LocationID)
	if errors.Is(err, sql.ErrNoRows) {
		// Unknown, or unchanged: the conference as it is says which.
		c, err := getConference(ctx, s.db, id)
		if err != nil {
			return conference.Conference{}, fmt.Errorf("update conference %d: %w", id, err)
		}
		return c, nil
	}
	if err != nil {
		var location int64
		if p.LocationID != nil {
			location = *p.LocationID
		}
		return conference.Conference{}, fmt.Errorf("update conference %d: %w", id, translateWrite(err, location))
	}
	s.wrote()
	return row.domain(), nil
}

// writeOne runs a create's or an update's statement, as the Store notifies, through the
// statement cache, and reads the row it returns. No row back is sql.ErrNoRows.
func (s *Store) writeOne(ctx context.Context, query writeSQL, args ...any) (conferenceRow, error) {
	q, err := pgschema.SQLOf(s.db)
	if err != nil {
		return conferenceRow{}, err
	}
	var notified bool // the statement's last column: whether it notified or emitted
	return scanConference(q.QueryRowContext(ctx, query[s.emitter()], append([]any{pgschema.Cached}, args...)...), &notified)
}

// DeleteConference removes conference id and its presentations, and records the delete with
// the next version, so that a late update can never outrank it downstream.
func (s *Store) DeleteConference(ctx context.Context, id int64) error {
	q, err := pgschema.SQLOf(s.db)
	if err != nil {
		return err
	}
	var deleted int64
	var notified bool
	err = q.QueryRowContext(ctx, deleteSQL[s.emitter()], pgschema.Cached, id).Scan(&deleted, &notified)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("conference %d: %w", id, conference.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete conference %d: %w", id, translate(err))
	}
	s.wrote()
	return nil
}

// translateWrite says which field a constraint the database checked on the written row
// concerns: ends before the stored starts, or a location that does not exist.
func translateWrite(err error, location int64) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.ConstraintName {
		case "conferences_check":
			return conference.Invalid("ends", conference.EndsBeforeStarts)
		case "conferences_location_id_fkey":
			return conference.Invalid("location", fmt.Sprintf("no location with id %d", location))
		}
	}
	return translate(err)
}
