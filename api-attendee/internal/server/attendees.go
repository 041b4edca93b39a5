package server

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/api-attendee/internal/postgres"
	"conferencego/httpedge"
)

type conferenceRef struct {
	Name       string `json:"name"`
	ImportHref string `json:"import_href"`
}

type attendeeDetail struct {
	ID          int64         `json:"id"`
	Href        string        `json:"href"`
	Email       string        `json:"email"`
	Name        string        `json:"name"`
	CompanyName string        `json:"company_name"`
	Created     time.Time     `json:"created"`
	HasBadge    bool          `json:"has_badge"`
	Conference  conferenceRef `json:"conference"`
}

// attendeeListItem is the original's list encoder: the conference is its name, a string.
// Its React attendee list renders that field directly and goes blank on an object.
type attendeeListItem struct {
	Href       string `json:"href"`
	Name       string `json:"name"`
	Conference string `json:"conference"`
}

func attendeeHref(id int64) string { return "/api/attendees/" + strconv.FormatInt(id, 10) + "/" }

func toAttendeeDetail(a attendee.Attendee) attendeeDetail {
	return attendeeDetail{
		ID: a.ID, Href: attendeeHref(a.ID), Email: a.Email, Name: a.Name, CompanyName: a.CompanyName,
		Created: a.Created, HasBadge: a.HasBadge,
		Conference: conferenceRef{Name: a.Conference.Name, ImportHref: a.Conference.ImportHref},
	}
}

func toAttendeeListItem(a attendee.Attendee) attendeeListItem {
	return attendeeListItem{Href: attendeeHref(a.ID), Name: a.Name, Conference: a.Conference.Name}
}

var attendeeFields = []string{"email", "name", "company_name"}

// decodeAttendee reads an attendee's fields, and with withConference also the conference it
// registers for (as the original front-end posts to /api/attendees/).
func decodeAttendee(c *fiber.Ctx, withConference bool) (attendee.AttendeePatch, int64, error) {
	allowed := attendeeFields
	if withConference {
		allowed = append([]string{"conference"}, attendeeFields...)
	}
	o, err := httpedge.DecodeObject(c, allowed...)
	if err != nil {
		return attendee.AttendeePatch{}, 0, err
	}
	p := attendee.AttendeePatch{
		Email:       o.Str("email", false),
		Name:        o.Str("name", false),
		CompanyName: o.Str("company_name", true),
	}
	var conferenceID int64
	if withConference {
		if ref := o.Ref("conference", "/api/conferences/"); ref != nil {
			conferenceID = *ref
		} else if _, given := o.Raw("conference"); !given {
			o.Add("conference", "is required: the conference's id or href, like /api/conferences/7/")
		}
	}
	return p, conferenceID, o.Err()
}

func register(c *fiber.Ctx, store *postgres.Store, conferenceID int64, p attendee.AttendeePatch) error {
	a, err := store.Register(c.UserContext(), conferenceID, p)
	if err != nil {
		return err
	}
	return httpedge.Created(c, attendeeHref(a.ID), toAttendeeDetail(a))
}

func handleRegisterForConference(store *postgres.Store) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := httpedge.IDParam(c, "id", "conference")
		if err != nil {
			return err
		}
		p, _, err := decodeAttendee(c, false)
		if err != nil {
			return err
		}
		return register(c, store, id, p)
	}
}

func handleRegister(store *postgres.Store) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p, conferenceID, err := decodeAttendee(c, true)
		if err != nil {
			return err
		}
		return register(c, store, conferenceID, p)
	}
}

// attendees lists the attendees of conference id (0: of every conference), streamed when the
// client asks for all of them, as the original's pages do.
func attendees(log *slog.Logger, store *postgres.Store, id int64) httpedge.List[attendee.Attendee, attendeeListItem] {
	return httpedge.List[attendee.Attendee, attendeeListItem]{
		Name: "attendees", Path: "/api/attendees/", What: "attendee", Log: log,
		Fetch: func(ctx context.Context, after int64, limit int) ([]attendee.Attendee, bool, error) {
			return store.ListAttendees(ctx, id, after, limit)
		},
		Key:  func(a attendee.Attendee) int64 { return a.ID },
		Item: toAttendeeListItem,
	}
}

func handleListConferenceAttendees(log *slog.Logger, store *postgres.Store) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := httpedge.IDParam(c, "id", "conference")
		if err != nil {
			return err
		}
		l := attendees(log, store, id)
		l.Path = "/api/conferences/" + strconv.FormatInt(id, 10) + "/attendees/"
		return l.Send(c)
	}
}

func handleListAttendees(log *slog.Logger, store *postgres.Store) fiber.Handler {
	return attendees(log, store, 0).Send
}

func handleGetAttendee(store *postgres.Store) fiber.Handler {
	return httpedge.ByID("attendee", store.GetAttendee, func(a attendee.Attendee) any { return toAttendeeDetail(a) })
}

func handleUpdateAttendee(store *postgres.Store) fiber.Handler {
	decode := func(c *fiber.Ctx) (attendee.AttendeePatch, error) {
		p, _, err := decodeAttendee(c, false)
		return p, err
	}
	return httpedge.UpdateByID("attendee", decode, store.UpdateAttendee, func(a attendee.Attendee) any { return toAttendeeDetail(a) })
}

func handleDeleteAttendee(store *postgres.Store) fiber.Handler {
	return httpedge.DeleteByID("attendee", store.DeleteAttendee)
}

// handleCreateBadge is idempotent: 201 when it made the badge, 200 when it existed already;
// both answer the attendee, whose has_badge is then true.
func handleCreateBadge(store *postgres.Store) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := httpedge.IDParam(c, "id", "attendee")
		if err != nil {
			return err
		}
		a, created, err := store.CreateBadge(c.UserContext(), id)
		if err != nil {
			return fmt.Errorf("badge: %w", err)
		}
		status := fiber.StatusOK
		if created {
			status = fiber.StatusCreated
		}
		return c.Status(status).JSON(toAttendeeDetail(a))
	}
}
