package postgres

import (
	"context"
	"fmt"

	"conferencego/api-attendee/internal/attendee"
)

// CopyRow is a ConferenceVO, tombstone or not, with how many attendees it holds: what a page
// watching the copy shows.
type CopyRow struct {
	attendee.ConferenceVO
	Attendees int
}

type newestRow struct {
	conferenceRow `bun:",extend"`
	Attendees     int `bun:"attendees"`
}

// NewestConferenceVOs returns the limit rows of conference_vos with the highest conference
// ids, tombstones included, newest first. Ordering by the key keeps it one index range
// however large the table is (ordering by applied_at would sort the whole table).
func (s *Store) NewestConferenceVOs(ctx context.Context, limit int) ([]CopyRow, error) {
	var rows []newestRow
	err := s.db.NewSelect().Model(&rows).
		ColumnExpr("v.*").
		ColumnExpr("(SELECT count(*) FROM attendees a WHERE a.conference_id = v.conference_id) AS attendees").
		Order("conference_id DESC").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the newest conference_vos: %w", translate(err))
	}
	out := make([]CopyRow, len(rows))
	for i, r := range rows {
		out[i] = CopyRow{ConferenceVO: r.domain(), Attendees: r.Attendees}
	}
	return out, nil
}
