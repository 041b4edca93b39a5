package changeevent

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The HTTP side of the contract: the routes and bodies by which api-conference tells what it
// holds (its change feed and its state listing) and by which api-attendee takes changes for its
// copy. api-conference serves the first two, api-attendee the rest, and the syncer calls both;
// all three use these types, so a shape changes in one place.
const (
	// PathFeed serves the changes in commit order after a cursor: GET ?after=<cursor>&limit=N
	// answers a FeedPage; a cursor older than the retained history answers 410 Gone.
	PathFeed = "/api/conferences/changes/"
	// PathState lists every conference the source knows, live or tombstoned, by id:
	// GET ?after=<id>&limit=N answers a StatePage; GET ?ids=1,2,3 looks up those ids only.
	PathState = "/api/conferences/state/"

	// PathHandover takes a Handover and applies it (version-guarded) to the copy.
	PathHandover = "/internal/changes"
	// PathRepairs takes a RepairRequest: the source wins over a copy that is ahead of it.
	PathRepairs = "/internal/repairs"
	// PathConferenceVOs lists the copy, tombstones included, by id: GET ?after=<id>&limit=N answers a
	// CopyPage.
	PathConferenceVOs = "/internal/conferences"
	// PathSource is the source the copy is bound to: GET answers a SourceBinding, DELETE
	// forgets it (the operator's way to accept a new source).
	PathSource = "/internal/source"
)

// Query parameters of the feed and the listings.
const (
	ParamAfter = "after"
	ParamLimit = "limit"
	ParamIDs   = "ids"
	// MaxPage bounds limit on every listing, and ids on a lookup.
	MaxPage = 1000
)

// Change is one change of one conference as JSON: an item of the feed and of the state
// listing, and what api-attendee takes. Data is the payload JSON (see Conference), null for a
// delete; it is kept as bytes so that fields this side does not know pass through unharmed.
type Change struct {
	EventID      string          `json:"event_id"`
	Type         Type            `json:"type"`
	ConferenceID int64           `json:"conference_id"`
	Version      int64           `json:"version"`
	OccurredAt   time.Time       `json:"occurred_at"`
	Data         json.RawMessage `json:"data"`
}

// ChangeOf returns e as JSON. A payload that cannot be encoded is an error. It does not
// validate e: the receiver does, with Change.Event (see the package doc).
func ChangeOf(e Event) (Change, error) {
	c := Change{EventID: e.ID, Type: e.Type, ConferenceID: e.ConferenceID, Version: e.Version, OccurredAt: e.OccurredAt.UTC()}
	if e.Data != nil {
		b, err := MarshalData(*e.Data)
		if err != nil {
			return Change{}, err
		}
		c.Data = b
	}
	return c, nil
}

// Event checks c and returns it as an Event, or an error wrapping ErrMalformed. It is the
// check of a change received over HTTP; what is done with the Event after it needs no other.
func (c Change) Event() (Event, error) {
	e := Event{ID: c.EventID, Type: c.Type, ConferenceID: c.ConferenceID, Version: c.Version, OccurredAt: c.OccurredAt.UTC()}
	if len(c.Data) > 0 && string(c.Data) != "null" {
		d, err := ParseData(c.Data)
		if err != nil {
			return Event{}, err
		}
		e.Data = d
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// SourceEventID is the event id of a change the source serves from its state rather than from
// its outbox: the same for every read of that version, so a consumer sees a repeat as one.
func SourceEventID(conferenceID, version int64) string {
	return "conference-" + strconv.FormatInt(conferenceID, 10) + "-v" + strconv.FormatInt(version, 10)
}

// TypeFor is the type of a change that leaves a conference at version, live or deleted.
func TypeFor(version int64, deleted bool) Type {
	switch {
	case deleted:
		return Deleted
	case version == 1:
		return Created
	}
	return Updated
}

// FeedPage is one page of the change feed. Each conference appears at most once per page, at
// its newest version: the feed serves what each conference is now, in the order of the
// transactions that last changed it, and only once every transaction that could commit before
// them has ended.
type FeedPage struct {
	// Source names the database the changes come from; it is made with the schema. A client
	// that sees it change is talking to another database and must stop, not apply.
	Source  string   `json:"source"`
	Changes []Change `json:"changes"`
	// Next is the cursor to ask with next time. With no changes it is the cursor asked with,
	// or one further on.
	Next string `json:"next"`
	// More says that more changes are ready now: ask again at once.
	More bool `json:"more"`
}

// StatePage is one page of the state listing: every conference the source knows, live or
// tombstoned (within the tombstone retention), by id, each as the change that brought it to
// where it is.
type StatePage struct {
	Source string `json:"source"`
	// Cursor is the feed position as of this page's read: a client that lists every page and
	// then follows the feed from the first page's cursor misses no change.
	Cursor      string   `json:"cursor"`
	Conferences []Change `json:"conferences"`
	// Next is the path of the following page; null on the last page and on a lookup.
	Next *string `json:"next"`
	// Unknown, on a lookup, lists the ids asked about that the source does not know at all
	// (never had, or deleted longer ago than its tombstone retention). Every id asked about is
	// either in Conferences or here: an id in neither means the answer is broken.
	Unknown []int64 `json:"unknown,omitempty"`
}

// Handover is the body of POST PathHandover: changes for the copy, from Source.
type Handover struct {
	Source  string   `json:"source"`
	Changes []Change `json:"changes"`
}

// Repair replaces what the copy holds for one conference with what the source holds, even
// when the copy's version is higher: the copy can be ahead of the source only by a fault.
type Repair struct {
	ConferenceID int64 `json:"conference_id"`
	// Replaces is the copy's version when the repair was decided. The repair applies only if
	// the copy still holds it, so it never undoes a change applied in between.
	Replaces int64 `json:"replaces"`
	// Change is the source's state of the conference; null when the source does not know it
	// at all, which leaves a tombstone of version 0 that anything from the source outranks.
	Change *Change `json:"change"`
}

// RepairRequest is the body of POST PathRepairs.
type RepairRequest struct {
	Source  string   `json:"source"`
	Repairs []Repair `json:"repairs"`
}

// HandoverResult is api-attendee's answer to a Handover or a RepairRequest.
type HandoverResult struct {
	// Changes is the number of distinct conferences in the request.
	Changes int `json:"changes"`
	// Applied is how many of them changed a row.
	Applied int `json:"applied"`
}

// ConferenceVO is one row of api-attendee's ConferenceVO table as PathConferenceVOs lists it, tombstones included.
// Starts and ends are null on a tombstone of a conference the copy never saw alive.
type ConferenceVO struct {
	ID           int64      `json:"id"`
	ImportHref   string     `json:"import_href"`
	Name         string     `json:"name"`
	Starts       *time.Time `json:"starts"`
	Ends         *time.Time `json:"ends"`
	MaxAttendees int        `json:"max_attendees"`
	Version      int64      `json:"version"`
	Deleted      bool       `json:"deleted"`
	OccurredAt   time.Time  `json:"occurred_at"`
	AppliedAt    time.Time  `json:"applied_at"`
}

// ConferenceVOPage is one page of PathConferenceVOs.
type ConferenceVOPage struct {
	// Source is the source the copy is bound to; empty before its first hand-over.
	Source      string         `json:"source"`
	Conferences []ConferenceVO `json:"conferences"`
	// Next is the path of the following page, null on the last.
	Next *string `json:"next"`
}

// SourceBinding is the body of GET PathSource.
type SourceBinding struct {
	// Source is empty while the copy is bound to no source.
	Source string `json:"source"`
	// BoundAt is when the copy was bound; null while it is not.
	BoundAt *time.Time `json:"bound_at"`
}

// CheckSource reports whether s can name a source: a short printable token.
func CheckSource(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("%w: source must be 1 to 64 characters", ErrMalformed)
	}
	for _, r := range s {
		if r <= ' ' || r > '~' {
			return fmt.Errorf("%w: source has a character outside printable ASCII", ErrMalformed)
		}
	}
	return nil
}

// PathList is api-conference's public conference list, the original project's; the syncer's
// list mode reads it whole.
const PathList = "/api/conferences/"

// ListedConference is one item of PathList: the payload's fields, then the version and time of
// the conference's last change, then its location with that location's href. api-conference
// writes it and the syncer's list mode reads it, so the shape is defined once, here.
//
// Location is the list's own and hides Conference.Location, in Go and in JSON (which keeps the
// keys in the list's order); ListConference and Payload move the location between the two.
type ListedConference struct {
	Conference
	Version  int64          `json:"version"`
	Updated  time.Time      `json:"updated"`
	Location ListedLocation `json:"location"`
}

// ListedLocation is a listed conference's location.
type ListedLocation struct {
	Href string `json:"href"`
	Location
}

// ListConference returns c as listed at version, last changed at updated, its location
// served at locationHref.
func ListConference(c Conference, version int64, updated time.Time, locationHref string) ListedConference {
	l := ListedConference{Conference: c, Version: version, Updated: updated, Location: ListedLocation{Href: locationHref, Location: c.Location}}
	l.Conference.Location = Location{}
	return l
}

// Payload is the listed conference as the payload of an event.
func (l ListedConference) Payload() Conference {
	c := l.Conference
	c.Location = l.Location.Location
	return c
}
