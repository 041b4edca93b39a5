package main

import (
	"strconv"
	"time"

	"conferencego/syncer/changeevent"
)

// row is a conference with its location, as selected.
type row struct {
	ID, LocationID, Version                int64
	Name, Description                      string
	Starts, Ends, Created, Updated         time.Time
	MaxPresentations, MaxAttendees         int
	LocID                                  int64
	LocName, LocCity, LocState, LocPicture string
	LocRoomCount                           int
	LocCreated, LocUpdated                 time.Time
}

func (r *row) dest() []any {
	return []any{&r.ID, &r.Name, &r.Starts, &r.Ends, &r.Description, &r.MaxPresentations, &r.MaxAttendees,
		&r.LocationID, &r.Version, &r.Created, &r.Updated,
		&r.LocID, &r.LocName, &r.LocCity, &r.LocRoomCount, &r.LocState, &r.LocPicture, &r.LocCreated, &r.LocUpdated}
}

// The answers' JSON, field for field api-conference's (internal/server/conferences.go).
type locationJSON struct {
	Href       string  `json:"href"`
	Name       string  `json:"name"`
	City       string  `json:"city"`
	State      string  `json:"state"`
	PictureURL *string `json:"picture_url"`
}

type detailJSON struct {
	ID               int64        `json:"id"`
	Href             string       `json:"href"`
	Name             string       `json:"name"`
	Starts           time.Time    `json:"starts"`
	Ends             time.Time    `json:"ends"`
	Description      string       `json:"description"`
	MaxPresentations int          `json:"max_presentations"`
	MaxAttendees     int          `json:"max_attendees"`
	Version          int64        `json:"version"`
	Created          time.Time    `json:"created"`
	Updated          time.Time    `json:"updated"`
	Location         locationJSON `json:"location"`
}

type envelopeJSON struct {
	Conference detailJSON `json:"conference"`
	Weather    *struct{}  `json:"weather"`
}

type pageJSON struct {
	Conferences []changeevent.ListedConference `json:"conferences"`
	Next        *string                        `json:"next"`
}

func locationHref(id int64) string { return "/api/locations/" + strconv.FormatInt(id, 10) + "/" }

func (r *row) detail() detailJSON {
	var pic *string
	if r.LocPicture != "" {
		pic = &r.LocPicture
	}
	return detailJSON{
		ID: r.ID, Href: changeevent.Href(r.ID), Name: r.Name, Starts: r.Starts.UTC(), Ends: r.Ends.UTC(),
		Description: r.Description, MaxPresentations: r.MaxPresentations, MaxAttendees: r.MaxAttendees,
		Version: r.Version, Created: r.Created.UTC(), Updated: r.Updated.UTC(),
		Location: locationJSON{Href: locationHref(r.LocID), Name: r.LocName, City: r.LocCity, State: r.LocState, PictureURL: pic},
	}
}

func (r *row) listed() changeevent.ListedConference {
	c := changeevent.Conference{
		ID: r.ID, Href: changeevent.Href(r.ID), Name: r.Name, Starts: r.Starts.UTC(), Ends: r.Ends.UTC(),
		MaxAttendees: r.MaxAttendees, Location: changeevent.Location{Name: r.LocName, City: r.LocCity, State: r.LocState},
	}
	return changeevent.ListConference(c, r.Version, r.Updated.UTC(), locationHref(r.LocID))
}
