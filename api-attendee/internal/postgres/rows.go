package postgres

import (
	"database/sql"
	"time"

	"github.com/uptrace/bun"

	"conferencego/api-attendee/internal/attendee"
)

type conferenceRow struct {
	bun.BaseModel `bun:"table:conference_vos,alias:v"`

	ConferenceID int64        `bun:"conference_id,pk"`
	ImportHref   string       `bun:"import_href"`
	Name         string       `bun:"name"`
	Starts       sql.NullTime `bun:"starts"`
	Ends         sql.NullTime `bun:"ends"`
	MaxAttendees int          `bun:"max_attendees"`
	Version      int64        `bun:"version"`
	Deleted      bool         `bun:"deleted"`
	EventID      string       `bun:"event_id"`
	OccurredAt   time.Time    `bun:"occurred_at"`
	AppliedAt    time.Time    `bun:"applied_at"`
}

func (r conferenceRow) domain() attendee.ConferenceVO {
	return attendee.ConferenceVO{
		ID: r.ConferenceID, ImportHref: r.ImportHref, Name: r.Name,
		Starts: r.Starts.Time.UTC(), Ends: r.Ends.Time.UTC(), MaxAttendees: r.MaxAttendees,
		Version: r.Version, Deleted: r.Deleted,
		OccurredAt: r.OccurredAt.UTC(), AppliedAt: r.AppliedAt.UTC(),
	}
}

type attendeeRow struct {
	bun.BaseModel `bun:"table:attendees,alias:a"`

	ID           int64     `bun:"id,pk,autoincrement"`
	ConferenceID int64     `bun:"conference_id"`
	Email        string    `bun:"email"`
	Name         string    `bun:"name"`
	CompanyName  string    `bun:"company_name"`
	Created      time.Time `bun:"created,nullzero,default:now()"`
}

// attendeeView is an attendee with what its detail shows of its badge and conference.
type attendeeView struct {
	attendeeRow
	HasBadge             bool   `bun:"has_badge"`
	ConferenceName       string `bun:"conference_name"`
	ConferenceImportHref string `bun:"conference_import_href"`
}

func (r attendeeView) domain() attendee.Attendee {
	return attendee.Attendee{
		ID: r.ID, ConferenceID: r.ConferenceID, Email: r.Email, Name: r.Name, CompanyName: r.CompanyName,
		Created: r.Created.UTC(), HasBadge: r.HasBadge,
		Conference: attendee.ConferenceRef{Name: r.ConferenceName, ImportHref: r.ConferenceImportHref},
	}
}
