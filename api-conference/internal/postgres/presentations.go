package postgres

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

	"conferencego/api-conference/internal/conference"
	"conferencego/service/domainerr"
)

// CreatePresentation submits a presentation to conference confID. The conference row is
// locked while its presentations are counted, so concurrent submissions cannot exceed
// max_presentations.
func (s *Store) CreatePresentation(ctx context.Context, confID int64, p conference.PresentationPatch) (conference.Presentation, error) {
	pr, err := domainerr.Whole[conference.Presentation](p)
	if err != nil {
		return conference.Presentation{}, err
	}
	var out conference.Presentation
	err = s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var conf conferenceRow
		if err := tx.NewSelect().Model(&conf).Where("id = ?", confID).For("UPDATE").Scan(ctx); err != nil {
			return translate(err)
		}
		n, err := tx.NewSelect().Model((*presentationRow)(nil)).Where("conference_id = ?", confID).Count(ctx)
		if err != nil {
			return translate(err)
		}
		if n >= int64(conf.MaxPresentations) {
			return fmt.Errorf("%w: conference %d already has its maximum of %d presentations", conference.ErrConflict, confID, conf.MaxPresentations)
		}
		row := presentationRow{
			ConferenceID: confID, PresenterName: pr.PresenterName, CompanyName: pr.CompanyName,
			PresenterEmail: pr.PresenterEmail, Title: pr.Title, Synopsis: pr.Synopsis, Status: conference.StatusSubmitted,
		}
		if _, err := tx.NewInsert().Model(&row).Returning("*").Exec(ctx); err != nil {
			return translate(err)
		}
		row.Conference = &conf
		out = row.domain()
		return nil
	})
	if err != nil {
		return conference.Presentation{}, fmt.Errorf("create presentation for conference %d: %w", confID, err)
	}
	return out, nil
}

// ListPresentations returns the presentations of conference confID, by id.
func (s *Store) ListPresentations(ctx context.Context, confID int64) ([]conference.Presentation, error) {
	var conf conferenceRow
	if err := s.db.NewSelect().Model(&conf).Column("id", "name").Where("id = ?", confID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list presentations of conference %d: %w", confID, translate(err))
	}
	var rows []presentationRow
	if err := s.db.NewSelect().Model(&rows).Where("conference_id = ?", confID).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list presentations of conference %d: %w", confID, translate(err))
	}
	out := make([]conference.Presentation, len(rows))
	for i, r := range rows {
		r.Conference = &conf
		out[i] = r.domain()
	}
	return out, nil
}

func getPresentation(ctx context.Context, db bun.IDB, id int64, lock bool) (presentationRow, error) {
	var row presentationRow
	q := db.NewSelect().Model(&row).Relation("Conference", func(q *bun.SelectQuery) *bun.SelectQuery {
		return q.Column("id", "name")
	}).Where("p.id = ?", id)
	if lock {
		q = q.For("UPDATE OF p")
	}
	if err := q.Scan(ctx); err != nil {
		return presentationRow{}, translate(err)
	}
	return row, nil
}

// GetPresentation returns presentation id.
func (s *Store) GetPresentation(ctx context.Context, id int64) (conference.Presentation, error) {
	row, err := getPresentation(ctx, s.db, id, false)
	if err != nil {
		return conference.Presentation{}, fmt.Errorf("get presentation %d: %w", id, err)
	}
	return row.domain(), nil
}

// UpdatePresentation applies p to presentation id.
func (s *Store) UpdatePresentation(ctx context.Context, id int64, p conference.PresentationPatch) (conference.Presentation, error) {
	var out conference.Presentation
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		row, err := getPresentation(ctx, tx, id, true)
		if err != nil {
			return err
		}
		pr := row.domain()
		p.Apply(&pr)
		var v conference.ValidationError
		pr.Validate(&v)
		if err := v.Err(); err != nil {
			return err
		}
		row.PresenterName, row.CompanyName, row.PresenterEmail = pr.PresenterName, pr.CompanyName, pr.PresenterEmail
		row.Title, row.Synopsis = pr.Title, pr.Synopsis
		if _, err := tx.NewUpdate().Model(&row).
			Column("presenter_name", "company_name", "presenter_email", "title", "synopsis").
			WherePK().Exec(ctx); err != nil {
			return translate(err)
		}
		out = row.domain()
		return nil
	})
	if err != nil {
		return conference.Presentation{}, fmt.Errorf("update presentation %d: %w", id, err)
	}
	return out, nil
}

// SetPresentationStatus approves or rejects presentation id (see conference.Transition).
func (s *Store) SetPresentationStatus(ctx context.Context, id int64, status string) (conference.Presentation, error) {
	var out conference.Presentation
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		row, err := getPresentation(ctx, tx, id, true)
		if err != nil {
			return err
		}
		next, err := conference.Transition(row.Status, status)
		if err != nil {
			return err
		}
		if next != row.Status {
			row.Status = next
			if _, err := tx.NewUpdate().Model(&row).Column("status").WherePK().Exec(ctx); err != nil {
				return translate(err)
			}
		}
		out = row.domain()
		return nil
	})
	if err != nil {
		return conference.Presentation{}, fmt.Errorf("set status of presentation %d: %w", id, err)
	}
	return out, nil
}

// DeletePresentation removes presentation id.
func (s *Store) DeletePresentation(ctx context.Context, id int64) error {
	res, err := s.db.NewDelete().Model((*presentationRow)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete presentation %d: %w", id, translate(err))
	}
	return affectedOne(res, "presentation", id)
}
