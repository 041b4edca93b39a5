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
type Store struct{ db bun.IDB }

// NewStore returns a Store over db.
func NewStore(db bun.IDB) *Store { return &Store{db: db} }

// Ping checks that the database answers, for /readyz.
func (s *Store) Ping(ctx context.Context) error { return pgschema.Ping(ctx, s.db) }

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
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var row locationRow
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
		_, err := recordChanges(ctx, tx, ids, changeUpdated)
		return err
	})
	if err != nil {
		return conference.Location{}, fmt.Errorf("update location %d: %w", id, err)
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

func checkLocation(ctx context.Context, db bun.IDB, id int64, v *conference.ValidationError) error {
	if id <= 0 {
		return nil // Validate has said so already.
	}
	// KEY SHARE: the location cannot be deleted before this transaction commits.
	var found []int64
	if err := db.NewRaw("SELECT id FROM locations WHERE id = ? FOR KEY SHARE", id).Scan(ctx, &found); err != nil {
		return fmt.Errorf("look up location %d: %w", id, translate(err))
	}
	if len(found) == 0 {
		v.Add("location", fmt.Sprintf("no location with id %d", id))
	}
	return nil
}

// CreateConference validates and stores a new conference at version 1, with its outbox row.
func (s *Store) CreateConference(ctx context.Context, p conference.ConferencePatch) (conference.Conference, error) {
	var v conference.ValidationError
	p.RequireAll(&v)
	if err := v.Err(); err != nil {
		return conference.Conference{}, err
	}
	var c conference.Conference
	p.Apply(&c)
	c.Validate(&v)
	var out conference.Conference
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := checkLocation(ctx, tx, c.LocationID, &v); err != nil {
			return err
		}
		if err := v.Err(); err != nil {
			return err
		}
		row := conferenceRowOf(c)
		if _, err := tx.NewInsert().Model(&row).Returning("id").Exec(ctx); err != nil {
			return translate(err)
		}
		confs, err := recordChanges(ctx, tx, []int64{row.ID}, changeCreated)
		if err != nil {
			return err
		}
		out = confs[0]
		return nil
	})
	if err != nil {
		return conference.Conference{}, fmt.Errorf("create conference: %w", err)
	}
	return out, nil
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
	rows, err := selectConferences(ctx, s.db, after, int64(limit)+1)
	if err != nil {
		return nil, false, fmt.Errorf("list conferences: %w", translate(err))
	}
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	out := make([]conference.Conference, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out, more, nil
}

// ChangeMarker returns a number that grows with every committed change of any conference
// (create, update, delete, or a change of its location): the conference list's ETag.
func (s *Store) ChangeMarker(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.NewRaw("SELECT coalesce(sum(n), 0)::bigint FROM change_marker").Scan(ctx, &n); err != nil {
		return 0, fmt.Errorf("read change marker: %w", translate(err))
	}
	return n, nil
}

// UpdateConference applies p to conference id, validating the result as a whole (so a new
// ends is checked against the stored starts), and bumps its version by one.
func (s *Store) UpdateConference(ctx context.Context, id int64, p conference.ConferencePatch) (conference.Conference, error) {
	var out conference.Conference
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var row conferenceRow
		if err := tx.NewSelect().Model(&row).Where("id = ?", id).For("UPDATE").Scan(ctx); err != nil {
			return translate(err)
		}
		before := row.domain()
		c := before
		p.Apply(&c)
		var v conference.ValidationError
		c.Validate(&v)
		if err := v.Err(); err == nil && sameConference(before, c) {
			// Nothing changes: no new version and no event, so re-saving an unchanged form
			// costs the sync nothing.
			var err error
			out, err = getConference(ctx, tx, id)
			return err
		}
		if p.LocationID != nil && *p.LocationID != row.LocationID {
			if err := checkLocation(ctx, tx, c.LocationID, &v); err != nil {
				return err
			}
		}
		if err := v.Err(); err != nil {
			return err
		}
		c.ID = id
		row = conferenceRowOf(c)
		// Every column a client may set: what the row has but the database keeps itself.
		if _, err := tx.NewUpdate().Model(&row).ExcludeColumn("id", "version", "created", "updated").
			Set("version = version + 1").Set("updated = now()").WherePK().Exec(ctx); err != nil {
			return translate(err)
		}
		confs, err := recordChanges(ctx, tx, []int64{id}, changeUpdated)
		if err != nil {
			return err
		}
		out = confs[0]
		return nil
	})
	if err != nil {
		return conference.Conference{}, fmt.Errorf("update conference %d: %w", id, err)
	}
	return out, nil
}

// DeleteConference removes conference id and its presentations, and records the delete with
// the next version, so that a late update can never outrank it downstream.
func (s *Store) DeleteConference(ctx context.Context, id int64) error {
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var versions []int64
		if err := tx.NewRaw("DELETE FROM conferences WHERE id = ? RETURNING version", id).Scan(ctx, &versions); err != nil {
			return translate(err)
		}
		if len(versions) == 0 {
			return conference.ErrNotFound
		}
		return recordDelete(ctx, tx, id, versions[0]+1)
	})
	if err != nil {
		return fmt.Errorf("delete conference %d: %w", id, err)
	}
	return nil
}

// sameConference reports whether a and b hold the same writable fields.
func sameConference(a, b conference.Conference) bool {
	return a.Name == b.Name && a.Starts.Equal(b.Starts) && a.Ends.Equal(b.Ends) && a.Description == b.Description &&
		a.MaxPresentations == b.MaxPresentations && a.MaxAttendees == b.MaxAttendees && a.LocationID == b.LocationID
}
