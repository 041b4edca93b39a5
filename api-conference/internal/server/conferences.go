package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"conferencego/api-conference/internal/conference"
	"conferencego/api-conference/internal/postgres"
	"conferencego/httpedge"
	"conferencego/syncer/changeevent"
)

type locationSummary struct {
	Href  string `json:"href"`
	Name  string `json:"name"`
	City  string `json:"city"`
	State string `json:"state"`
}

// locationWithPicture is a conference detail's location: its picture_url is null when the
// location has no picture, as the original's null field was.
type locationWithPicture struct {
	locationSummary
	PictureURL *string `json:"picture_url"`
}

type conferenceDetail struct {
	ID               int64               `json:"id"`
	Href             string              `json:"href"`
	Name             string              `json:"name"`
	Starts           time.Time           `json:"starts"`
	Ends             time.Time           `json:"ends"`
	Description      string              `json:"description"`
	MaxPresentations int                 `json:"max_presentations"`
	MaxAttendees     int                 `json:"max_attendees"`
	Version          int64               `json:"version"`
	Created          time.Time           `json:"created"`
	Updated          time.Time           `json:"updated"`
	Location         locationWithPicture `json:"location"`
}

// conferenceEnvelope is the original project's shape of GET /api/conferences/{id}/.
type conferenceEnvelope struct {
	Conference conferenceDetail `json:"conference"`
	// Weather is always null: no weather service is called.
	Weather *struct{} `json:"weather"`
}

func toLocationSummary(l conference.Location) locationSummary {
	return locationSummary{Href: locationHref(l.ID), Name: l.Name, City: l.City, State: l.State}
}

// nullString is s, or nil (JSON null) when s is empty.
func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func toConferenceDetail(c conference.Conference) conferenceDetail {
	return conferenceDetail{
		ID: c.ID, Href: changeevent.Href(c.ID), Name: c.Name, Starts: c.Starts, Ends: c.Ends,
		Description: c.Description, MaxPresentations: c.MaxPresentations, MaxAttendees: c.MaxAttendees,
		Version: c.Version, Created: c.Created, Updated: c.Updated, Location: locationWithPicture{toLocationSummary(c.Location), nullString(c.Location.PictureURL)},
	}
}

var conferenceFields = []string{"name", "starts", "ends", "description", "max_presentations", "max_attendees", "location"}

func decodeConference(c *fiber.Ctx) (conference.ConferencePatch, error) {
	o, err := httpedge.DecodeObject(c, conferenceFields...)
	if err != nil {
		return conference.ConferencePatch{}, err
	}
	p := conference.ConferencePatch{
		Name:             o.Str("name", false),
		Starts:           o.When("starts"),
		Ends:             o.When("ends"),
		Description:      o.Str("description", true),
		MaxPresentations: o.Count("max_presentations", conference.MaxCount),
		MaxAttendees:     o.Count("max_attendees", conference.MaxCount),
		LocationID:       o.Ref("location", "/api/locations/"),
	}
	return p, o.Err()
}

// etagMatches reports whether an If-None-Match header names etag (weak comparison, RFC 9110).
func etagMatches(header, etag string) bool {
	for _, candidate := range strings.Split(header, ",") {
		candidate = strings.TrimPrefix(strings.TrimSpace(candidate), "W/")
		if candidate == etag || candidate == "*" {
			return true
		}
	}
	return false
}

// handleListConferences serves every conference, or keyset pages of them. Its ETag comes
// from the change marker, read in the same snapshot as the page (or, for a conditional GET,
// alone first): a list can never be older than its ETag says, so a client never gets a 304
// for a list that changed, and a poll that finds nothing new costs one tiny query.
func handleListConferences(log *slog.Logger, store *postgres.Store) fiber.Handler {
	// The item is the contract's: the syncer's list mode reads this list.
	l := httpedge.List[conference.Conference, changeevent.ListedConference]{
		Name: "conferences", Path: changeevent.PathList, What: "conference", Fetch: store.ListConferences, Log: log,
		Key: func(cf conference.Conference) int64 { return cf.ID },
		Item: func(cf conference.Conference) changeevent.ListedConference {
			return changeevent.ListConference(cf.Payload(), cf.Version, cf.Updated, locationHref(cf.Location.ID))
		},
	}
	return func(c *fiber.Ctx) error {
		limit, after, err := httpedge.ListParams(c, "conference")
		if err != nil {
			return err
		}
		setETag := func(marker int64) string {
			etag := fmt.Sprintf(`"m%d-l%d-a%d"`, marker, limit, after)
			c.Set(fiber.HeaderETag, etag)
			c.Set(fiber.HeaderCacheControl, "no-cache")
			return etag
		}
		if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" {
			marker, err := store.ChangeMarker(c.UserContext())
			if err != nil {
				return err
			}
			if etagMatches(inm, setETag(marker)) {
				// Status, not SendStatus: SendStatus fills the empty body with "Not Modified",
				// which is never sent but would be counted as bytes served.
				c.Status(fiber.StatusNotModified)
				return nil
			}
		}
		// The first page brings the marker with it; a streamed list's later pages, read
		// after this handler has returned, must not touch c.
		page, first := l, true
		page.Fetch = func(ctx context.Context, after int64, limit int) ([]conference.Conference, bool, error) {
			if !first {
				return store.ListConferences(ctx, after, limit)
			}
			first = false
			marker, confs, more, err := store.ListConferencesMarked(ctx, after, limit)
			if err != nil {
				return nil, false, err
			}
			setETag(marker)
			return confs, more, nil
		}
		return page.SendPage(c, limit, after)
	}
}

func handleCreateConference(store *postgres.Store) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p, err := decodeConference(c)
		if err != nil {
			return err
		}
		cf, err := store.CreateConference(c.UserContext(), p)
		if err != nil {
			return err
		}
		return httpedge.Created(c, changeevent.Href(cf.ID), toConferenceDetail(cf))
	}
}

func handleGetConference(store *postgres.Store) fiber.Handler {
	return httpedge.ByID("conference", store.GetConference, func(cf conference.Conference) any {
		return conferenceEnvelope{Conference: toConferenceDetail(cf)}
	})
}

func handleUpdateConference(store *postgres.Store) fiber.Handler {
	return httpedge.UpdateByID("conference", decodeConference, store.UpdateConference, func(cf conference.Conference) any {
		return toConferenceDetail(cf)
	})
}

func handleDeleteConference(store *postgres.Store) fiber.Handler {
	return httpedge.DeleteByID("conference", store.DeleteConference)
}
