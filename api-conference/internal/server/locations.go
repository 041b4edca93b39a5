package server

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"conferencego/api-conference/internal/conference"
	"conferencego/api-conference/internal/postgres"
	"conferencego/httpedge"
)

type stateJSON struct {
	Name         string `json:"name"`
	Abbreviation string `json:"abbreviation"`
}

func handleListStates(store *postgres.Store) fiber.Handler {
	return func(c *fiber.Ctx) error {
		states, err := store.ListStates(c.UserContext())
		if err != nil {
			return err
		}
		out := make([]stateJSON, len(states))
		for i, s := range states {
			out[i] = stateJSON{Name: s.Name, Abbreviation: s.Abbreviation}
		}
		return c.JSON(fiber.Map{"states": out})
	}
}

func locationHref(id int64) string { return "/api/locations/" + strconv.FormatInt(id, 10) + "/" }

type locationListItem struct {
	ID         int64   `json:"id"`
	Href       string  `json:"href"`
	Name       string  `json:"name"`
	City       string  `json:"city"`
	State      string  `json:"state"`
	PictureURL *string `json:"picture_url"`
}

type locationDetail struct {
	ID         int64     `json:"id"`
	Href       string    `json:"href"`
	Name       string    `json:"name"`
	City       string    `json:"city"`
	RoomCount  int       `json:"room_count"`
	State      string    `json:"state"`
	PictureURL *string   `json:"picture_url"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
}

func toLocationDetail(l conference.Location) locationDetail {
	return locationDetail{
		ID: l.ID, Href: locationHref(l.ID), Name: l.Name, City: l.City, RoomCount: l.RoomCount,
		State: l.State, PictureURL: nullString(l.PictureURL), Created: l.Created, Updated: l.Updated,
	}
}

var locationFields = []string{"name", "city", "room_count", "state", "picture_url"}

func decodeLocation(c *fiber.Ctx) (conference.LocationPatch, error) {
	o, err := httpedge.DecodeObject(c, locationFields...)
	if err != nil {
		return conference.LocationPatch{}, err
	}
	p := conference.LocationPatch{
		Name:       o.Str("name", false),
		City:       o.Str("city", false),
		RoomCount:  o.Count("room_count", conference.MaxCount),
		State:      o.Str("state", false),
		PictureURL: o.Str("picture_url", true),
	}
	return p, o.Err()
}

func handleListLocations(log *slog.Logger, store *postgres.Store) fiber.Handler {
	l := httpedge.List[conference.Location, locationListItem]{
		Name: "locations", Path: "/api/locations/", What: "location", Fetch: store.ListLocations, Log: log,
		Key: func(loc conference.Location) int64 { return loc.ID },
		Item: func(loc conference.Location) locationListItem {
			return locationListItem{ID: loc.ID, Href: locationHref(loc.ID), Name: loc.Name, City: loc.City, State: loc.State, PictureURL: nullString(loc.PictureURL)}
		},
	}
	return l.Send
}

func handleCreateLocation(store *postgres.Store) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p, err := decodeLocation(c)
		if err != nil {
			return err
		}
		l, err := store.CreateLocation(c.UserContext(), p)
		if err != nil {
			return err
		}
		return httpedge.Created(c, locationHref(l.ID), toLocationDetail(l))
	}
}

func handleGetLocation(store *postgres.Store) fiber.Handler {
	return httpedge.ByID("location", store.GetLocation, func(l conference.Location) any { return toLocationDetail(l) })
}

func handleUpdateLocation(store *postgres.Store) fiber.Handler {
	return httpedge.UpdateByID("location", decodeLocation, store.UpdateLocation, func(l conference.Location) any { return toLocationDetail(l) })
}

func handleDeleteLocation(store *postgres.Store) fiber.Handler {
	return httpedge.DeleteByID("location", store.DeleteLocation)
}
