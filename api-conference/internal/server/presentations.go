package server

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"conferencego/api-conference/internal/conference"
	"conferencego/api-conference/internal/postgres"
	"conferencego/httpedge"
	"conferencego/syncer/changeevent"
)

const (
	statusApproved = conference.StatusApproved
	statusRejected = conference.StatusRejected
)

func presentationHref(id int64) string {
	return "/api/presentations/" + strconv.FormatInt(id, 10) + "/"
}

type conferenceRef struct {
	Href string `json:"href"`
	Name string `json:"name"`
}

type presentationDetail struct {
	ID             int64         `json:"id"`
	Href           string        `json:"href"`
	PresenterName  string        `json:"presenter_name"`
	CompanyName    string        `json:"company_name"`
	PresenterEmail string        `json:"presenter_email"`
	Title          string        `json:"title"`
	Synopsis       string        `json:"synopsis"`
	Created        time.Time     `json:"created"`
	Status         string        `json:"status"`
	Conference     conferenceRef `json:"conference"`
}

func toPresentationDetail(p conference.Presentation) presentationDetail {
	return presentationDetail{
		ID: p.ID, Href: presentationHref(p.ID), PresenterName: p.PresenterName, CompanyName: p.CompanyName,
		PresenterEmail: p.PresenterEmail, Title: p.Title, Synopsis: p.Synopsis, Created: p.Created,
		Status: p.Status, Conference: conferenceRef{Href: changeevent.Href(p.ConferenceID), Name: p.ConferenceName},
	}
}

var presentationFields = []string{"presenter_name", "company_name", "presenter_email", "title", "synopsis"}

func decodePresentation(c *fiber.Ctx, extra ...string) (*httpedge.Object, conference.PresentationPatch, error) {
	o, err := httpedge.DecodeObject(c, append(extra, presentationFields...)...)
	if err != nil {
		return nil, conference.PresentationPatch{}, err
	}
	p := conference.PresentationPatch{
		PresenterName:  o.Str("presenter_name", false),
		CompanyName:    o.Str("company_name", true),
		PresenterEmail: o.Str("presenter_email", false),
		Title:          o.Str("title", false),
		Synopsis:       o.Str("synopsis", true),
	}
	return o, p, nil
}

func handleListPresentations(store *postgres.Store) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := httpedge.IDParam(c, "id", "conference")
		if err != nil {
			return err
		}
		ps, err := store.ListPresentations(c.UserContext(), id)
		if err != nil {
			return err
		}
		out := make([]presentationDetail, len(ps))
		for i, p := range ps {
			out[i] = toPresentationDetail(p)
		}
		return c.JSON(fiber.Map{"presentations": out})
	}
}

func handleCreatePresentation(store *postgres.Store) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := httpedge.IDParam(c, "id", "conference")
		if err != nil {
			return err
		}
		// The original front-end also sends the conference it posts to; it must be this one.
		o, p, err := decodePresentation(c, "conference")
		if err != nil {
			return err
		}
		if ref := o.Ref("conference", "/api/conferences/"); ref != nil && *ref != id {
			o.Add("conference", fmt.Sprintf("names conference %d but the request is for conference %d", *ref, id))
		}
		if err := o.Err(); err != nil {
			return err
		}
		pr, err := store.CreatePresentation(c.UserContext(), id, p)
		if err != nil {
			return err
		}
		return httpedge.Created(c, presentationHref(pr.ID), toPresentationDetail(pr))
	}
}

func handleGetPresentation(store *postgres.Store) fiber.Handler {
	return httpedge.ByID("presentation", store.GetPresentation, presentationBody)
}

func presentationBody(p conference.Presentation) any { return toPresentationDetail(p) }

func handleUpdatePresentation(store *postgres.Store) fiber.Handler {
	decode := func(c *fiber.Ctx) (conference.PresentationPatch, error) {
		o, p, err := decodePresentation(c)
		if err != nil {
			return p, err
		}
		return p, o.Err()
	}
	return httpedge.UpdateByID("presentation", decode, store.UpdatePresentation, presentationBody)
}

func handleDeletePresentation(store *postgres.Store) fiber.Handler {
	return httpedge.DeleteByID("presentation", store.DeletePresentation)
}

// handleSetStatus approves or rejects a presentation. It takes no body.
func handleSetStatus(store *postgres.Store, status string) fiber.Handler {
	set := func(ctx context.Context, id int64) (conference.Presentation, error) {
		return store.SetPresentationStatus(ctx, id, status)
	}
	return httpedge.ByID("presentation", set, presentationBody)
}
