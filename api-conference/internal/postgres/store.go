package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"conferencego/api-conference/internal/conference"
	"conferencego/pgschema"
)

// Store reads and writes the conference context. It works on a *bun.DB or inside a bun.Tx.
type Store struct {
	db       bun.IDB
	notify   NotifyMode
	notifier *Notifier // with NotifyAfter
	// logical makes the writes emit logical-decoding messages instead of outbox rows, kept by
	// the replication slot slot (WithLogical); notify is then NotifyOff.
	logical bool
	slot    string
}

// emitter is how s's writes hand on their events.
func (s *Store) emitter() emitter {
	if s.logical {
		return emitLogical
	}
	return emitter(s.notify)
}

// NewStore returns a Store over db that notifies the relay as its writes commit.
func NewStore(db bun.IDB) *Store { return &Store{db: db, notify: NotifyCommit} }

// Ping checks that the database answers, for /readyz; on the logical transport also that the
// slot still exists, since without it every event written is lost without a trace (the writes
// go on: a reconcile repairs the copy, and the relay makes the slot again when it reconnects).
func (s *Store) Ping(ctx context.Context) error {
	if err := pgschema.Ping(ctx, s.db); err != nil || !s.logical {
		return err
	}
	q, err := pgschema.SQLOf(s.db)
	if err != nil {
		return err
	}
	ready, err := slotReady(ctx, q, s.slot)
	if err != nil {
		return err
	}
	if !ready {
		return fmt.Errorf("replication slot %s is gone: the events written now reach no relay (OUTBOX_TRANSPORT=logical)", s.slot)
	}
	return nil
}

// inTx runs fn in a transaction, translating what BEGIN and COMMIT fail with too.
func (s *Store) inTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	return pgschema.InTx(ctx, s.db, translate, fn)
}

// ListStates returns every state, by name.
func (s *Store) ListStates(ctx context.Context) ([]conference.State, error) {
	var rows []stateRow
	if err := s.db.NewSelect().Model(&rows).Order("name").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list states: %w", translate(err))
	}
	out := make([]conference.State, len(rows))
	for i, r := range rows {
		out[i] = conference.State{Abbreviation: r.Abbreviation, Name: r.Name}
	}
	return out, nil
}

func checkState(ctx context.Context, db bun.IDB, abbr string, v *conference.ValidationError) error {
	if len(abbr) != 2 {
		return nil // Validate has said so already.
	}
	exists, err := db.NewSelect().Model((*stateRow)(nil)).Where("abbreviation = ?", abbr).Exists(ctx)
	if err != nil {
		return fmt.Errorf("look up state %q: %w", abbr, translate(err))
	}
	if !exists {
		v.Add("state", fmt.Sprintf("%q is not a known state abbreviation", abbr))
	}
	return nil
}

// CreateLocation validates and stores a new location.
func (s *Store) CreateLocation(ctx context.Context, p conference.LocationPatch) (conference.Location, error) {
	var v conference.ValidationError
	p.RequireAll(&v)
	if err := v.Err(); err != nil {
		return conference.Location{}, err
	}
	var l conference.Location
	p.Apply(&l)
	l.Validate(&v)
	if err := checkState(ctx, s.db, l.State, &v); err != nil {
		return conference.Location{}, err
	}
	if err := v.Err(); err != nil {
		return conference.Location{}, err
	}
	row := locationRow{Name: l.Name, City: l.City, RoomCount: l.RoomCount, State: l.State, PictureURL: l.PictureURL}
	if _, err := s.db.NewInsert().Model(&row).Returning("*").Exec(ctx); err != nil {
		return conference.Location{}, fmt.Errorf("create location: %w", translate(err))
	}
	return row.domain(), nil
}

// GetLocation returns location id.
func (s *Store) GetLocation(ctx context.Context, id int64) (conference.Location, error) {
	var row locationRow
	if err := s.db.NewSelect().Model(&row).Where("id = ?", id).Scan(ctx); err != nil {
		return conference.Location{}, fmt.Errorf("get location %d: %w", id, translate(err))
	}
	return row.domain(), nil
}

// ListLocations returns up to limit locations with ids above after, by id, and whether more
// follow: a keyset page.
func (s *Store) ListLocations(ctx context.Context, after int64, limit int) ([]conference.Location, bool, error) {
	var rows []locationRow
	if err := s.db.NewSelect().Model(&rows).Where("id > ?", after).Order("id").Limit(int64(limit) + 1).Scan(ctx); err != nil {
		return nil, false, fmt.Errorf("list locations: %w", translate(err))
	}
	out, more := pgschema.Page(rows, limit, locationRow.domain)
	return out, more, nil
}

// UpdateLocation applies p to location id. When the name, city or state change, every
// conference there changes what it publishes, so each gets a new version and an outbox row in
// the same transaction.
func (s *Store) UpdateLocation(ctx context.Context, id int64, p conference.LocationPatch) (conference.Location, error) {
	var out conference.Location
	var notified bool
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var row locationRow
		// FOR UPDATE, not NO KEY UPDATE: a conference created or moved here meanwhile waits
		// (its KEY SHARE conflicts), and then reads the new name, which this cascade, not
		// seeing that conference, would not give it (see writes.go).
		if err := tx.NewSelect().Model(&row).Where("id = ?", id).For("UPDATE").Scan(ctx); err != nil {
			return translate(err)
		}
		l := row.domain()
		cascade := p.ChangesConferences(l)
		p.Apply(&l)
		var v conference.ValidationError
		l.Validate(&v)
		if err := checkState(ctx, tx, l.State, &v); err != nil {
			return err
		}
		if err := v.Err(); err != nil {
			return err
		}
		row = locationRow{ID: id, Name: l.Name, City: l.City, RoomCount: l.RoomCount, State: l.State, PictureURL: l.PictureURL}
		if _, err := tx.NewUpdate().Model(&row).
			Column("name", "city", "room_count", "state", "picture_url").
			Set("updated = now()").WherePK().Returning("*").Exec(ctx); err != nil {
			return translate(err)
		}
		out = row.domain()
		if !cascade {
			return nil
		}
		var ids []int64
		if err := tx.NewRaw(
			"UPDATE conferences SET version = version + 1, updated = now() WHERE location_id = ? RETURNING id", id,
		).Scan(ctx, &ids); err != nil {
			return translate(err)
		}
		notified = len(ids) > 0
		_, err := recordChanges(ctx, tx, ids, changeUpdated, s.emitter())
		return err
	})
	if err != nil {
		return conference.Location{}, fmt.Errorf("update location %d: %w", id, err)
	}
	if notified {
		s.wrote()
	}
	return out, nil
}

// DeleteLocation removes location id; it is a conflict while conferences are held there.
func (s *Store) DeleteLocation(ctx context.Context, id int64) error {
	res, err := s.db.NewDelete().Model((*locationRow)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		err = translate(err)
		if errors.Is(err, conference.ErrConflict) {
			return fmt.Errorf("delete location %d: %w: it still has conferences; delete or move them first", id, conference.ErrConflict)
		}
		return fmt.Errorf("delete location %d: %w", id, err)
	}
	return affectedOne(res, "location", id)
}

func affectedOne(res sql.Result, what string, id int64) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete %s %d: %w", what, id, err)
	}
	if n == 0 {
		return fmt.Errorf("%s %d: %w", what, id, conference.ErrNotFound)
	}
	return nil
}

func getConference(ctx context.Context, db bun.IDB, id int64) (conference.Conference, error) {
	row, err := selectConference(ctx, db, id)
	if err != nil {
		return conference.Conference{}, translate(err)
	}
	return row.domain(), nil
}

// GetConference returns conference id with its location.
func (s *Store) GetConference(ctx context.Context, id int64) (conference.Conference, error) {
	c, err := getConference(ctx, s.db, id)
	if err != nil {
		return conference.Conference{}, fmt.Errorf("get conference %d: %w", id, err)
	}
	return c, nil
}

// ListConferences returns up to limit conferences with ids above after, by id, and whether
// more follow: a keyset page, which stays correct and cheap however deep it goes.
func (s *Store) ListConferences(ctx context.Context, after int64, limit int) ([]conference.Conference, bool, error) {
	rows, err := selectConferences(ctx, s.db, listConferencesSQL, after, int64(limit)+1)
	if err != nil {
		return nil, false, fmt.Errorf("list conferences: %w", translate(err))
	}
	confs, more := conferencePage(rows, limit)
	return confs, more, nil
}

// ListConferencesMarked is ListConferences with the ChangeMarker of the same snapshot: the
// list's ETag names exactly the page it comes with, and both take one round trip.
func (s *Store) ListConferencesMarked(ctx context.Context, after int64, limit int) (int64, []conference.Conference, bool, error) {
	var marker int64
	rows, err := selectConferences(ctx, s.db, listMarkedSQL, after, int64(limit)+1, &marker)
	if err != nil {
		return 0, nil, false, fmt.Errorf("list conferences: %w", translate(err))
	}
	if len(rows) == 0 {
		// No row carried the marker. Read it first, then the page again: the ETag may then be
		// older than the list, never newer, so no client is told an unseen change is nothing.
		if marker, err = s.ChangeMarker(ctx); err != nil {
			return 0, nil, false, err
		}
		confs, more, err := s.ListConferences(ctx, after, limit)
		return marker, confs, more, err
	}
	confs, more := conferencePage(rows, limit)
	return marker, confs, more, nil
}

// conferencePage is rows, read with one more than limit, as a page and whether more follow.
func conferencePage(rows []conferenceRow, limit int) ([]conference.Conference, bool) {
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	out := make([]conference.Conference, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, more
}

// ChangeMarker returns a number that grows with every committed change of any conference
// (create, update, delete, or a change of its location): the conference list's ETag.
func (s *Store) ChangeMarker(ctx context.Context) (int64, error) {
	q, err := pgschema.SQLOf(s.db)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := q.QueryRowContext(ctx, changeMarkerSQL, pgschema.Cached).Scan(&n); err != nil {
		return 0, fmt.Errorf("read change marker: %w", translate(err))
	}
	return n, nil
}
