package attendee

import (
	"fmt"
	"strings"
	"time"
)

// Bounds on user input. They keep rows reasonable and every value representable in Postgres
// and in RFC 3339 JSON.
const (
	MaxNameLen  = 200
	MaxEmailLen = 254
)

// ConferenceVO is api-attendee's local, read-only copy of a conference of api-conference (the seed's name):
// what registration needs to know, the version it was copied at, and whether it was deleted.
type ConferenceVO struct {
	// ID is the conference's id in api-conference.
	ID           int64
	ImportHref   string
	Name         string
	Starts       time.Time
	Ends         time.Time
	MaxAttendees int
	Version      int64
	// Deleted marks a tombstone: the conference is gone at the source, but its row stays so
	// that an older change arriving late cannot bring it back, and its attendees keep it.
	Deleted bool
	// OccurredAt is when the change that produced this row happened at the source, AppliedAt
	// when it was applied here; the difference is the propagation lag.
	OccurredAt time.Time
	AppliedAt  time.Time
}

// ConferenceRef is what an attendee shows of its conference.
type ConferenceRef struct {
	Name       string
	ImportHref string
}

// Attendee is a person registered for a conference.
type Attendee struct {
	ID           int64
	ConferenceID int64
	Email        string
	Name         string
	CompanyName  string
	Created      time.Time
	HasBadge     bool
	Conference   ConferenceRef
}

// AttendeePatch holds the fields a registration or update sets; nil means "not given".
type AttendeePatch struct {
	Email       *string
	Name        *string
	CompanyName *string
}

// Apply copies the given fields onto a.
func (p AttendeePatch) Apply(a *Attendee) {
	setIf(&a.Email, p.Email)
	setIf(&a.Name, p.Name)
	setIf(&a.CompanyName, p.CompanyName)
}

// RequireAll reports the fields a registration must have.
func (p AttendeePatch) RequireAll(v *ValidationError) {
	if p.Email == nil {
		v.Add("email", "is required")
	}
	if p.Name == nil {
		v.Add("name", "is required")
	}
}

// Validate checks a's own fields and normalises them.
func (a *Attendee) Validate(v *ValidationError) {
	a.Email = strings.TrimSpace(a.Email)
	a.Name = strings.TrimSpace(a.Name)
	a.CompanyName = strings.TrimSpace(a.CompanyName)
	v.CheckEmail("email", a.Email, MaxEmailLen)
	if a.Name == "" {
		v.Add("name", "must not be empty")
	} else {
		v.CheckText("name", a.Name, MaxNameLen)
	}
	v.CheckText("company_name", a.CompanyName, MaxNameLen)
}

// CanRegister reports why nobody more may register for c, given how many attendees it has.
func (c ConferenceVO) CanRegister(registered int) error {
	switch {
	case c.Deleted:
		return fmt.Errorf("%w: conference %d has been deleted", ErrConflict, c.ID)
	case registered >= c.MaxAttendees:
		return fmt.Errorf("%w: conference %d is full (%d of %d places taken)", ErrConflict, c.ID, registered, c.MaxAttendees)
	}
	return nil
}

func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}
