package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/api-attendee/internal/postgres"
	"conferencego/httpedge"
)

// conferenceVO is the JSON of a ConferenceVO; id is the conference's id in api-conference.
type conferenceVO struct {
	ID           int64     `json:"id"`
	ImportHref   string    `json:"import_href"`
	Name         string    `json:"name"`
	Starts       time.Time `json:"starts"`
	Ends         time.Time `json:"ends"`
	MaxAttendees int       `json:"max_attendees"`
	Version      int64     `json:"version"`
}

func toConferenceVO(c attendee.ConferenceVO) conferenceVO {
	return conferenceVO{
		ID: c.ID, ImportHref: c.ImportHref, Name: c.Name, Starts: c.Starts, Ends: c.Ends,
		MaxAttendees: c.MaxAttendees, Version: c.Version,
	}
}

// handleListConferences lists the live ConferenceVOs: every one, streamed, as the original's pages
// ask for them, or keyset pages with ?limit=.
func handleListConferences(log *slog.Logger, store *postgres.Store) fiber.Handler {
	return httpedge.List[attendee.ConferenceVO, conferenceVO]{
		Name: "conferences", Path: "/api/conferences/", What: "conference", Fetch: store.ListConferenceVOs, Log: log,
		Key: func(c attendee.ConferenceVO) int64 { return c.ID }, Item: toConferenceVO,
	}.Send
}

// handleGetConference answers 404 for a tombstone too: to a client, a deleted conference is gone.
func handleGetConference(store *postgres.Store) fiber.Handler {
	get := func(ctx context.Context, id int64) (attendee.ConferenceVO, error) {
		cf, err := store.GetConferenceVO(ctx, id)
		if err == nil && cf.Deleted {
			err = fmt.Errorf("conference %d has been deleted: %w", id, attendee.ErrNotFound)
		}
		return cf, err
	}
	return httpedge.ByID("conference", get, func(cf attendee.ConferenceVO) any { return toConferenceVO(cf) })
}
