package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"

	"conferencego/pgschema"
)

// The hot reads (a conference by id, a page of the conference list and its ETag) and the
// conference writes (writes.go) are constant SQL texts with placeholders, run with pgx's
// statement cache: the pool's default is the simple protocol (pgschema), under which bun
// renders every argument into the text and Postgres parses and plans each statement anew.
// Here each connection prepares the text once and later only binds and executes it. Bun
// keeps everything else, and the migrations.

// conferenceSelect is conferenceRow's columns and its location's, in scanConference's order,
// from a conference c and its location l.
const conferenceSelect = `c.id, c.name, c.starts, c.ends, c.description, c.max_presentations,
	c.max_attendees, c.location_id, c.version, c.created, c.updated,
	l.id, l.name, l.city, l.room_count, l.state, l.picture_url, l.created, l.updated`

// conferenceFrom is where conferenceSelect reads from.
const conferenceFrom = `
FROM conferences AS c JOIN locations AS l ON l.id = c.location_id`

// conferenceColumns are conferenceSelect from the tables.
const conferenceColumns = conferenceSelect + conferenceFrom

const (
	getConferenceSQL   = `SELECT ` + conferenceColumns + ` WHERE c.id = $1`
	listConferencesSQL = `SELECT ` + conferenceColumns + ` WHERE c.id > $1 ORDER BY c.id LIMIT $2`
	// changeMarkerSQL is the list's ETag.
	changeMarkerSQL = `SELECT coalesce(sum(n), 0)::bigint FROM change_marker`
	// listMarkedSQL is listConferencesSQL with the change marker in every row (computed
	// once): the page and its ETag from one snapshot, in one round trip.
	listMarkedSQL = `SELECT ` + conferenceSelect + `, (` + changeMarkerSQL + `)` + conferenceFrom +
		` WHERE c.id > $1 ORDER BY c.id LIMIT $2`
)

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanConference reads one row of conferenceSelect, and then the extra columns a write
// returns after it.
func scanConference(sc scanner, extra ...any) (conferenceRow, error) {
	var r conferenceRow
	l := new(locationRow)
	err := sc.Scan(append([]any{&r.ID, &r.Name, &r.Starts, &r.Ends, &r.Description, &r.MaxPresentations,
		&r.MaxAttendees, &r.LocationID, &r.Version, &r.Created, &r.Updated,
		&l.ID, &l.Name, &l.City, &l.RoomCount, &l.State, &l.PictureURL, &l.Created, &l.Updated}, extra...)...)
	r.Location = l
	return r, err
}

// selectConference returns conference id with its location (sql.ErrNoRows if there is none).
func selectConference(ctx context.Context, db bun.IDB, id int64) (conferenceRow, error) {
	q, err := pgschema.SQLOf(db)
	if err != nil {
		return conferenceRow{}, err
	}
	return scanConference(q.QueryRowContext(ctx, getConferenceSQL, pgschema.Cached, id))
}

// selectConferences runs query, listConferencesSQL or listMarkedSQL, for up to limit
// conferences with ids above after, by id, with their locations, and scans the columns after
// the conference's into extra. Where it can reach pgx under database/sql, it reads the rows with pgx: a page is
// a hundred rows of nineteen columns, and database/sql boxes every value into an interface
// and copies it out again, which cost a quarter of the list's CPU.
func selectConferences(ctx context.Context, db bun.IDB, query string, after, limit int64, extra ...any) (rows []conferenceRow, err error) {
	read := func(rs scanRows) error {
		for rs.Next() {
			r, err := scanConference(rs, extra...)
			if err != nil {
				return err
			}
			rows = append(rows, r)
		}
		return rs.Err()
	}
	done, err := withPgx(ctx, db, func(conn *pgx.Conn) error {
		rs, err := conn.Query(ctx, query, pgschema.Cached, after, limit)
		if err != nil {
			return err
		}
		defer rs.Close()
		return read(rs)
	})
	if done {
		return rows, err
	}
	q, err := pgschema.SQLOf(db)
	if err != nil {
		return nil, err
	}
	rs, err := q.QueryContext(ctx, query, pgschema.Cached, after, limit)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := rs.Close(); err == nil {
			err = cerr
		}
	}()
	return rows, read(rs)
}

// scanRows is a *sql.Rows or a pgx.Rows.
type scanRows interface {
	scanner
	Next() bool
	Err() error
}

// withPgx runs fn on the pgx connection under db and reports true, where database/sql lets
// one reach it: a connection of a *bun.DB's pool, held for fn, or a bun.Conn's. A
// transaction's connection it cannot reach (a Tx has no Raw); then it reports false and does
// nothing, and the caller reads through database/sql.
func withPgx(ctx context.Context, db bun.IDB, fn func(*pgx.Conn) error) (bool, error) {
	var conn *sql.Conn
	switch db := db.(type) {
	case *bun.DB:
		c, err := db.DB.Conn(ctx)
		if err != nil {
			return true, err
		}
		defer c.Close()
		conn = c
	case bun.Conn:
		conn = db.Conn
	case *bun.Conn:
		conn = db.Conn
	default:
		return false, nil
	}
	return true, conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("no pgx connection under %T", dc)
		}
		return fn(c.Conn())
	})
}
