package postgres

import (
	"time"

	"github.com/uptrace/bun"

	"conferencego/api-conference/internal/conference"
)

type stateRow struct {
	bun.BaseModel `bun:"table:states,alias:s"`

	Abbreviation string `bun:"abbreviation,pk"`
	Name         string `bun:"name"`
}

type locationRow struct {
	bun.BaseModel `bun:"table:locations,alias:l"`

	ID         int64     `bun:"id,pk,autoincrement"`
	Name       string    `bun:"name"`
	City       string    `bun:"city"`
	RoomCount  int       `bun:"room_count"`
	State      string    `bun:"state"`
	PictureURL string    `bun:"picture_url"`
	Created    time.Time `bun:"created,nullzero,default:now()"`
	Updated    time.Time `bun:"updated,nullzero,default:now()"`
}

func (r locationRow) domain() conference.Location {
	return conference.Location{
		ID: r.ID, Name: r.Name, City: r.City, RoomCount: r.RoomCount, State: r.State,
		PictureURL: r.PictureURL, Created: r.Created.UTC(), Updated: r.Updated.UTC(),
	}
}

type conferenceRow struct {
	bun.BaseModel `bun:"table:conferences,alias:c"`

	ID               int64        `bun:"id,pk,autoincrement"`
	Name             string       `bun:"name"`
	Starts           time.Time    `bun:"starts"`
	Ends             time.Time    `bun:"ends"`
	Description      string       `bun:"description"`
	MaxPresentations int          `bun:"max_presentations"`
	MaxAttendees     int          `bun:"max_attendees"`
	LocationID       int64        `bun:"location_id"`
	Location         *locationRow `bun:"rel:belongs-to,join:location_id=id"`
	Version          int64        `bun:"version,nullzero,default:1"`
	Created          time.Time    `bun:"created,nullzero,default:now()"`
	Updated          time.Time    `bun:"updated,nullzero,default:now()"`
}

func (r conferenceRow) domain() conference.Conference {
	c := conference.Conference{
		ID: r.ID, Name: r.Name, Starts: r.Starts.UTC(), Ends: r.Ends.UTC(), Description: r.Description,
		MaxPresentations: r.MaxPresentations, MaxAttendees: r.MaxAttendees, LocationID: r.LocationID,
		Version: r.Version, Created: r.Created.UTC(), Updated: r.Updated.UTC(),
	}
	if r.Location != nil {
		c.Location = r.Location.domain()
	}
	return c
}

type presentationRow struct {
	bun.BaseModel `bun:"table:presentations,alias:p"`

	ID             int64          `bun:"id,pk,autoincrement"`
	ConferenceID   int64          `bun:"conference_id"`
	Conference     *conferenceRow `bun:"rel:belongs-to,join:conference_id=id"`
	PresenterName  string         `bun:"presenter_name"`
	CompanyName    string         `bun:"company_name"`
	PresenterEmail string         `bun:"presenter_email"`
	Title          string         `bun:"title"`
	Synopsis       string         `bun:"synopsis"`
	Status         string         `bun:"status"`
	Created        time.Time      `bun:"created,nullzero,default:now()"`
}

func (r presentationRow) domain() conference.Presentation {
	p := conference.Presentation{
		ID: r.ID, ConferenceID: r.ConferenceID, PresenterName: r.PresenterName, CompanyName: r.CompanyName,
		PresenterEmail: r.PresenterEmail, Title: r.Title, Synopsis: r.Synopsis, Status: r.Status,
		Created: r.Created.UTC(),
	}
	if r.Conference != nil {
		p.ConferenceName = r.Conference.Name
	}
	return p
}

// outboxRow is one unpublished change; the relay reads the same table.
type outboxRow struct {
	bun.BaseModel `bun:"table:outbox,alias:o"`

	ID           int64     `bun:"id,pk,autoincrement"`
	EventID      string    `bun:"event_id,nullzero,default:gen_random_uuid()"`
	ConferenceID int64     `bun:"conference_id"`
	Type         string    `bun:"type"`
	Version      int64     `bun:"version"`
	Payload      []byte    `bun:"payload,type:jsonb,nullzero"`
	OccurredAt   time.Time `bun:"occurred_at,nullzero,default:clock_timestamp()"`
}
