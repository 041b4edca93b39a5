package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/pgschema"
	"conferencego/service/domainerr"
)

// attendeeSelect reads attendees with their badge and the name of their conference.
const attendeeSelect = `SELECT a.id, a.conference_id, a.email, a.name, a.company_name, a.created,
    (b.attendee_id IS NOT NULL) AS has_badge,
    v.name AS conference_name, v.import_href AS conference_import_href
FROM attendees AS a
JOIN conference_vos AS v ON v.conference_id = a.conference_id
LEFT JOIN badges AS b ON b.attendee_id = a.id`

// Register validates p and registers it for conference conferenceID.
//
// The conference's row is locked for the whole check-and-insert, so registrations for one
// conference queue behind each other and the last places cannot be given out twice. The
// lock (FOR NO KEY UPDATE) still lets the attendees' foreign-key checks through.
func (s *Store) Register(ctx context.Context, conferenceID int64, p attendee.AttendeePatch) (attendee.Attendee, error) {
	a, err := domainerr.Whole[attendee.Attendee](p)
	if err != nil {
		return attendee.Attendee{}, err
	}
	var id int64
	err = s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var vo conferenceRow
		if err := tx.NewSelect().Model(&vo).Where("conference_id = ?", conferenceID).For("NO KEY UPDATE").Scan(ctx); err != nil {
			return translate(err)
		}
		registered, err := tx.NewSelect().Model((*attendeeRow)(nil)).Where("conference_id = ?", conferenceID).Count(ctx)
		if err != nil {
			return translate(err)
		}
		if err := vo.domain().CanRegister(int(registered)); err != nil {
			return err
		}
		row := attendeeRow{ConferenceID: conferenceID, Email: a.Email, Name: a.Name, CompanyName: a.CompanyName}
		if _, err := tx.NewInsert().Model(&row).Returning("id").Exec(ctx); err != nil {
			return translate(err)
		}
		id = row.ID
		return nil
	})
	if err != nil {
		if errors.Is(err, attendee.ErrNotFound) {
			return attendee.Attendee{}, fmt.Errorf("register for conference %d: conference %w", conferenceID, err)
		}
		return attendee.Attendee{}, fmt.Errorf("register for conference %d: %w", conferenceID, err)
	}
	return s.GetAttendee(ctx, id)
}

// GetAttendee returns attendee id.
func (s *Store) GetAttendee(ctx context.Context, id int64) (attendee.Attendee, error) {
	var row attendeeView
	if err := s.db.NewRaw(attendeeSelect+" WHERE a.id = ?", id).Scan(ctx, &row); err != nil {
		return attendee.Attendee{}, fmt.Errorf("attendee %d: %w", id, translate(err))
	}
	return row.domain(), nil
}

// ListAttendees returns up to limit attendees with ids above after, by id, and whether more
// follow: of conference conferenceID, or of every conference when it is 0. The first page
// (after 0) of a conference that has no copy is ErrNotFound.
func (s *Store) ListAttendees(ctx context.Context, conferenceID, after int64, limit int) ([]attendee.Attendee, bool, error) {
	var rows []attendeeView
	var err error
	if conferenceID == 0 {
		err = s.db.NewRaw(attendeeSelect+" WHERE a.id > ? ORDER BY a.id LIMIT ?", after, limit+1).Scan(ctx, &rows)
	} else {
		if after == 0 {
			if _, err := s.GetConferenceVO(ctx, conferenceID); err != nil {
				return nil, false, fmt.Errorf("list attendees: %w", err)
			}
		}
		err = s.db.NewRaw(attendeeSelect+" WHERE a.conference_id = ? AND a.id > ? ORDER BY a.id LIMIT ?", conferenceID, after, limit+1).Scan(ctx, &rows)
	}
	if err != nil {
		return nil, false, fmt.Errorf("list attendees: %w", translate(err))
	}
	out, more := pgschema.Page(rows, limit, attendeeView.domain)
	return out, more, nil
}

// UpdateAttendee applies p to attendee id. An attendee cannot move to another conference:
// that would skip the registration rules.
func (s *Store) UpdateAttendee(ctx context.Context, id int64, p attendee.AttendeePatch) (attendee.Attendee, error) {
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var row attendeeRow
		if err := tx.NewSelect().Model(&row).Where("id = ?", id).For("UPDATE").Scan(ctx); err != nil {
			return translate(err)
		}
		a := attendee.Attendee{Email: row.Email, Name: row.Name, CompanyName: row.CompanyName}
		p.Apply(&a)
		var v attendee.ValidationError
		a.Validate(&v)
		if err := v.Err(); err != nil {
			return err
		}
		row.Email, row.Name, row.CompanyName = a.Email, a.Name, a.CompanyName
		if _, err := tx.NewUpdate().Model(&row).Column("email", "name", "company_name").WherePK().Exec(ctx); err != nil {
			return translate(err)
		}
		return nil
	})
	if err != nil {
		return attendee.Attendee{}, fmt.Errorf("update attendee %d: %w", id, err)
	}
	return s.GetAttendee(ctx, id)
}

// DeleteAttendee removes attendee id and its badge.
func (s *Store) DeleteAttendee(ctx context.Context, id int64) error {
	res, err := s.db.NewDelete().Model((*attendeeRow)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete attendee %d: %w", id, translate(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete attendee %d: %w", id, attendee.ErrNotFound)
	}
	return nil
}

// CreateBadge gives attendee id a badge unless it has one, and reports whether it made one.
func (s *Store) CreateBadge(ctx context.Context, id int64) (attendee.Attendee, bool, error) {
	res, err := s.db.NewRaw(
		"INSERT INTO badges (attendee_id) SELECT id FROM attendees WHERE id = ? ON CONFLICT (attendee_id) DO NOTHING", id,
	).Exec(ctx)
	if err != nil {
		return attendee.Attendee{}, false, fmt.Errorf("create badge for attendee %d: %w", id, translate(err))
	}
	n, _ := res.RowsAffected()
	a, err := s.GetAttendee(ctx, id)
	if err != nil {
		return attendee.Attendee{}, false, err
	}
	return a, n > 0, nil
}
