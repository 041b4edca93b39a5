package conference

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"conferencego/syncer/changeevent"
)

// Bounds on user input. They keep rows reasonable and keep every value representable in
// Postgres and in RFC 3339 JSON.
const (
	MaxNameLen      = 200
	MaxTextLen      = 10000
	MaxURLLen       = 2000
	MaxEmailLen     = 254
	MaxCount        = 1_000_000
	MinYear         = 1900
	MaxYear         = 9999
	StatusSubmitted = "SUBMITTED"
	StatusApproved  = "APPROVED"
	StatusRejected  = "REJECTED"
)

// State is a US state or the District of Columbia.
type State struct {
	Abbreviation string
	Name         string
}

// Location is a venue where conferences happen.
type Location struct {
	ID         int64
	Name       string
	City       string
	RoomCount  int
	State      string // abbreviation
	PictureURL string
	Created    time.Time
	Updated    time.Time
}

// LocationPatch holds the fields a create or update sets; nil means "not given".
type LocationPatch struct {
	Name       *string
	City       *string
	RoomCount  *int
	State      *string
	PictureURL *string
}

// Apply copies the given fields onto l.
func (p LocationPatch) Apply(l *Location) {
	setIf(&l.Name, p.Name)
	setIf(&l.City, p.City)
	setIf(&l.RoomCount, p.RoomCount)
	setIf(&l.State, p.State)
	setIf(&l.PictureURL, p.PictureURL)
}

// RequireAll reports the fields a create must have.
func (p LocationPatch) RequireAll(v *ValidationError) {
	require(v, "name", p.Name == nil)
	require(v, "city", p.City == nil)
	require(v, "room_count", p.RoomCount == nil)
	require(v, "state", p.State == nil)
}

// Validate checks l's own fields. Whether its state exists is the store's question.
func (l *Location) Validate(v *ValidationError) {
	l.Name = strings.TrimSpace(l.Name)
	l.City = strings.TrimSpace(l.City)
	l.State = strings.ToUpper(strings.TrimSpace(l.State))
	l.PictureURL = strings.TrimSpace(l.PictureURL)
	checkName(v, "name", l.Name)
	checkName(v, "city", l.City)
	checkCount(v, "room_count", l.RoomCount)
	if len(l.State) != 2 {
		v.Add("state", "must be a two-letter state abbreviation, like TX")
	}
	checkURL(v, "picture_url", l.PictureURL)
}

// ChangesConferences reports whether applying p changes what a conference at the location
// publishes (its payload carries the location's name, city and state).
func (p LocationPatch) ChangesConferences(before Location) bool {
	return (p.Name != nil && strings.TrimSpace(*p.Name) != before.Name) ||
		(p.City != nil && strings.TrimSpace(*p.City) != before.City) ||
		(p.State != nil && strings.ToUpper(strings.TrimSpace(*p.State)) != before.State)
}

// Conference is a conference with the summary of its location.
type Conference struct {
	ID               int64
	Name             string
	Starts           time.Time
	Ends             time.Time
	Description      string
	MaxPresentations int
	MaxAttendees     int
	LocationID       int64
	Location         Location
	// Version grows by one with every committed change.
	Version int64
	Created time.Time
	Updated time.Time
}

// Payload is what c publishes to other services: the contract's view of it, the same in the
// outbox, the change feed, the state listing and the list. A field other services should see
// is added here and to changeevent.Conference, and nowhere else on this side but the row.
func (c Conference) Payload() changeevent.Conference {
	return changeevent.Conference{
		ID: c.ID, Href: changeevent.Href(c.ID), Name: c.Name, Starts: c.Starts, Ends: c.Ends,
		MaxAttendees: c.MaxAttendees,
		Location:     changeevent.Location{Name: c.Location.Name, City: c.Location.City, State: c.Location.State},
	}
}

// ConferencePatch holds the fields a create or update sets; nil means "not given".
type ConferencePatch struct {
	Name             *string
	Starts           *time.Time
	Ends             *time.Time
	Description      *string
	MaxPresentations *int
	MaxAttendees     *int
	LocationID       *int64
}

// Apply copies the given fields onto c.
func (p ConferencePatch) Apply(c *Conference) {
	setIf(&c.Name, p.Name)
	setIf(&c.Starts, p.Starts)
	setIf(&c.Ends, p.Ends)
	setIf(&c.Description, p.Description)
	setIf(&c.MaxPresentations, p.MaxPresentations)
	setIf(&c.MaxAttendees, p.MaxAttendees)
	setIf(&c.LocationID, p.LocationID)
}

// RequireAll reports the fields a create must have.
func (p ConferencePatch) RequireAll(v *ValidationError) {
	require(v, "name", p.Name == nil)
	require(v, "starts", p.Starts == nil)
	require(v, "ends", p.Ends == nil)
	require(v, "max_presentations", p.MaxPresentations == nil)
	require(v, "max_attendees", p.MaxAttendees == nil)
	require(v, "location", p.LocationID == nil)
}

// Validate checks c's own fields and normalises them: times in UTC at microsecond precision,
// which is what Postgres keeps, so what a client is answered is what is stored.
func (c *Conference) Validate(v *ValidationError) {
	p := ConferencePatch{
		Name: &c.Name, Starts: &c.Starts, Ends: &c.Ends, Description: &c.Description,
		MaxPresentations: &c.MaxPresentations, MaxAttendees: &c.MaxAttendees, LocationID: &c.LocationID,
	}
	p.Check(v)
	p.Apply(c)
}

// Check normalises the fields p gives, as Validate does, and checks each of them, and ends
// against starts when both are given. What else a whole conference must hold depends on the
// row it is applied to: an update leaves that to the database (ends against the stored
// starts, a location that exists), which checks it against the row it writes. The fields are
// replaced, not written through: the caller's values stay as they were.
func (p *ConferencePatch) Check(v *ValidationError) {
	if p.Name != nil {
		p.Name = ptr(strings.TrimSpace(*p.Name))
		checkName(v, "name", *p.Name)
	}
	if p.Description != nil {
		p.Description = ptr(strings.TrimSpace(*p.Description))
		v.CheckText("description", *p.Description, MaxTextLen)
	}
	var okStarts, okEnds bool
	if p.Starts != nil {
		p.Starts = ptr(p.Starts.UTC().Truncate(time.Microsecond))
		okStarts = checkTime(v, "starts", *p.Starts)
	}
	if p.Ends != nil {
		p.Ends = ptr(p.Ends.UTC().Truncate(time.Microsecond))
		okEnds = checkTime(v, "ends", *p.Ends)
	}
	if okStarts && okEnds && p.Ends.Before(*p.Starts) {
		v.Add("ends", EndsBeforeStarts)
	}
	if p.MaxPresentations != nil {
		checkCount(v, "max_presentations", *p.MaxPresentations)
	}
	if p.MaxAttendees != nil {
		checkCount(v, "max_attendees", *p.MaxAttendees)
	}
	if p.LocationID != nil && *p.LocationID <= 0 {
		v.Add("location", "must be the id of an existing location")
	}
}

// EndsBeforeStarts is what a conference that would end before it starts is told, under ends.
const EndsBeforeStarts = "must not be before starts"

// Presentation is a talk submitted to a conference.
type Presentation struct {
	ID             int64
	ConferenceID   int64
	ConferenceName string
	PresenterName  string
	CompanyName    string
	PresenterEmail string
	Title          string
	Synopsis       string
	Status         string
	Created        time.Time
}

// PresentationPatch holds the fields a create or update sets; nil means "not given".
type PresentationPatch struct {
	PresenterName  *string
	CompanyName    *string
	PresenterEmail *string
	Title          *string
	Synopsis       *string
}

// Apply copies the given fields onto p.
func (pp PresentationPatch) Apply(p *Presentation) {
	setIf(&p.PresenterName, pp.PresenterName)
	setIf(&p.CompanyName, pp.CompanyName)
	setIf(&p.PresenterEmail, pp.PresenterEmail)
	setIf(&p.Title, pp.Title)
	setIf(&p.Synopsis, pp.Synopsis)
}

// RequireAll reports the fields a create must have.
func (pp PresentationPatch) RequireAll(v *ValidationError) {
	require(v, "presenter_name", pp.PresenterName == nil)
	require(v, "presenter_email", pp.PresenterEmail == nil)
	require(v, "title", pp.Title == nil)
	require(v, "synopsis", pp.Synopsis == nil)
}

// Validate checks p's own fields.
func (p *Presentation) Validate(v *ValidationError) {
	p.PresenterName = strings.TrimSpace(p.PresenterName)
	p.CompanyName = strings.TrimSpace(p.CompanyName)
	p.PresenterEmail = strings.TrimSpace(p.PresenterEmail)
	p.Title = strings.TrimSpace(p.Title)
	p.Synopsis = strings.TrimSpace(p.Synopsis)
	checkName(v, "presenter_name", p.PresenterName)
	v.CheckText("company_name", p.CompanyName, MaxNameLen)
	v.CheckEmail("presenter_email", p.PresenterEmail, MaxEmailLen)
	checkName(v, "title", p.Title)
	v.CheckText("synopsis", p.Synopsis, MaxTextLen)
}

// Transition returns the status a presentation moves to when an approval or rejection
// (to) is asked in status from. As in the original, a decision may be asked again or changed
// (approved, then rejected, and back): the last one asked stands.
func Transition(from, to string) (string, error) {
	switch to {
	case StatusApproved, StatusRejected:
		return to, nil
	default:
		return "", fmt.Errorf("%w: unknown status %q (from %s)", ErrInvalid, to, strings.ToLower(from))
	}
}

func ptr[T any](v T) *T { return &v }

func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

func require(v *ValidationError, field string, missing bool) {
	if missing {
		v.Add(field, "is required")
	}
}

func checkName(v *ValidationError, field, s string) {
	if s == "" {
		v.Add(field, "must not be empty")
		return
	}
	v.CheckText(field, s, MaxNameLen)
}

func checkCount(v *ValidationError, field string, n int) {
	if n < 0 || n > MaxCount {
		v.Add(field, fmt.Sprintf("must be between 0 and %d", MaxCount))
	}
}

func checkTime(v *ValidationError, field string, t time.Time) bool {
	if t.Year() < MinYear || t.Year() > MaxYear {
		v.Add(field, fmt.Sprintf("must be a date between the years %d and %d", MinYear, MaxYear))
		return false
	}
	return true
}

func checkURL(v *ValidationError, field, s string) {
	if s == "" {
		return
	}
	v.CheckText(field, s, MaxURLLen)
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.Add(field, "must be an http or https URL")
	}
}
