// Package changeevent is the change-event contract between api-conference, the syncer and
// api-attendee: the event types, the fields of a stream entry and the JSON of its payload.
//
// It is the only place that knows these names. The conference service builds events from its
// outbox, the syncer writes them to the Redis stream with Fields, and the attendee service reads
// them back with Decode. Decode never returns a zero Event: anything it cannot vouch for is an
// error wrapping ErrMalformed, so a consumer can dead-letter it with the reason.
//
// An event is validated once per trust boundary, by the side that receives it, because only
// the receiver can act on a refusal (dead-letter it, answer 422) and a check by the sender
// proves nothing to the receiver:
//
//   - outbox row to relay: OutboxRow.Entry, which dead-letters what it refuses and then
//     publishes the entry without a second check;
//   - stream entry to consumer: Decode;
//   - HTTP change to api-attendee: Change.Event (the syncer passes the source's changes on as
//     they came, and converts between shapes with ChangeOf without checking).
//
// Fields validates as well, for the one producer that has no boundary in front of it: code
// that builds an Event in memory and writes it straight to the stream (tests, tools).
package changeevent

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Default names of the stream and the consumer group (redisconn.Keys names the rest). Each can be
// overridden by the processes' configuration (SYNC_STREAM, SYNC_GROUP).
const (
	DefaultStream = "conference.changes"
	DefaultGroup  = "attendee"
)

// NotifyChannel is the Postgres channel api-conference notifies, in the same transaction as
// the outbox insert, to wake the relay.
const NotifyChannel = "conference_outbox"

// Field names of a stream entry, in the order Fields writes them.
const (
	FieldEventID      = "event_id"
	FieldType         = "type"
	FieldConferenceID = "conference_id"
	FieldVersion      = "version"
	FieldOccurredAt   = "occurred_at"
	FieldData         = "data"
)

// ErrMalformed is wrapped by every error that Decode, Validate and ParseData return.
var ErrMalformed = errors.New("malformed change event")

// Type is what happened to a conference.
type Type string

// The three event types.
const (
	Created Type = "conference.created"
	Updated Type = "conference.updated"
	Deleted Type = "conference.deleted"
)

// ParseType returns the Type named by s, or an error for anything else.
func ParseType(s string) (Type, error) {
	switch t := Type(s); t {
	case Created, Updated, Deleted:
		return t, nil
	}
	return "", fmt.Errorf("%w: unknown type %q", ErrMalformed, s)
}

// Location is the part of a conference's location that travels with it.
type Location struct {
	Name  string `json:"name"`
	City  string `json:"city"`
	State string `json:"state"`
}

// Conference is the payload of a created or updated event: what other services may know of a
// conference. Times are UTC.
type Conference struct {
	ID           int64     `json:"id"`
	Href         string    `json:"href"`
	Name         string    `json:"name"`
	Starts       time.Time `json:"starts"`
	Ends         time.Time `json:"ends"`
	MaxAttendees int       `json:"max_attendees"`
	Location     Location  `json:"location"`
}

// Href is the path of conference id in api-conference, as both services render it.
func Href(id int64) string {
	return "/api/conferences/" + strconv.FormatInt(id, 10) + "/"
}

// Event is one change of one conference.
type Event struct {
	// ID is unique per change and the same on every redelivery.
	ID           string
	Type         Type
	ConferenceID int64
	// Version is the conference's version after the change; a delete carries the next version.
	Version    int64
	OccurredAt time.Time
	// Data is the conference after the change; nil for a delete.
	Data *Conference
}

// maxEventIDLen bounds event ids so that a hostile entry cannot make a consumer store megabytes.
const maxEventIDLen = 128

// Validate reports whether e is an event a consumer can apply: the contract's rules, every
// problem at once. Decode, Change.Event and OutboxRow.Event end with it, so the events they
// return are valid; an Event built in code is checked by calling it (Fields does).
func (e Event) Validate() error {
	var problems []string
	if e.ID == "" {
		problems = append(problems, "event_id is empty")
	} else if len(e.ID) > maxEventIDLen || !utf8.ValidString(e.ID) {
		problems = append(problems, "event_id is not a short UTF-8 string")
	}
	if _, err := ParseType(string(e.Type)); err != nil {
		problems = append(problems, fmt.Sprintf("unknown type %q", e.Type))
	}
	if e.ConferenceID <= 0 {
		problems = append(problems, fmt.Sprintf("conference_id %d is not positive", e.ConferenceID))
	}
	if e.Version <= 0 {
		problems = append(problems, fmt.Sprintf("version %d is not positive", e.Version))
	}
	if e.OccurredAt.IsZero() {
		problems = append(problems, "occurred_at is missing")
	}
	switch {
	case e.Type == Deleted && e.Data != nil:
		problems = append(problems, "a delete carries no data")
	case e.Type != Deleted && e.Data == nil:
		problems = append(problems, fmt.Sprintf("%s needs data", e.Type))
	case e.Data != nil:
		if e.Data.ID != e.ConferenceID {
			problems = append(problems, fmt.Sprintf("data.id %d differs from conference_id %d", e.Data.ID, e.ConferenceID))
		}
		if e.Data.Name == "" {
			problems = append(problems, "data.name is empty")
		}
		if e.Data.Starts.IsZero() || e.Data.Ends.IsZero() {
			problems = append(problems, "data.starts and data.ends are required")
		}
		if e.Data.MaxAttendees < 0 {
			problems = append(problems, "data.max_attendees is negative")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrMalformed, strings.Join(problems, "; "))
	}
	return nil
}

// Fields returns the entry to XADD, as field-value pairs in a fixed order so that
// `redis-cli XREAD` shows every entry the same way. It validates e because e was built in
// memory and has crossed no boundary that checked it; a producer that read its event from
// somewhere already checked (the relay, from the outbox) uses OutboxRow.Entry instead.
func (e Event) Fields() ([]string, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	var data []byte
	if e.Data != nil {
		b, err := MarshalData(*e.Data)
		if err != nil {
			return nil, err
		}
		data = b
	}
	return e.fields(data), nil
}

// fields returns the entry of an event that has been validated, with data as the payload's
// JSON exactly as the producer wrote it (empty for a delete). It is unexported so that every
// way to an entry (Fields, OutboxRow.Entry) validates exactly once.
func (e Event) fields(data []byte) []string {
	return []string{
		FieldEventID, e.ID,
		FieldType, string(e.Type),
		FieldConferenceID, strconv.FormatInt(e.ConferenceID, 10),
		FieldVersion, strconv.FormatInt(e.Version, 10),
		FieldOccurredAt, e.OccurredAt.UTC().Format(time.RFC3339Nano),
		FieldData, string(data),
	}
}

// MarshalData returns the JSON of a payload, with its times in UTC.
func MarshalData(c Conference) ([]byte, error) {
	c.Starts = c.Starts.UTC()
	c.Ends = c.Ends.UTC()
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("marshal conference %d: %w", c.ID, err)
	}
	return b, nil
}

// ParseData decodes the JSON of a payload. Fields it does not know are ignored, not refused:
// api-conference may ship a new field before the syncer and api-attendee are upgraded, and the
// copy must not stop for that.
func ParseData(b []byte) (*Conference, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	var c Conference
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: data: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data: trailing content after the JSON object", ErrMalformed)
	}
	c.Starts = c.Starts.UTC()
	c.Ends = c.Ends.UTC()
	return &c, nil
}

// Decode turns the values of a stream entry (as go-redis returns them) into an Event, or an
// error wrapping ErrMalformed that says what is wrong. It is the stream's check of the
// contract: it parses each field, then runs Validate once, so an Event it returns needs no
// second Validate.
func Decode(values map[string]any) (Event, error) {
	str := func(name string) (string, error) {
		v, ok := values[name]
		if !ok {
			return "", fmt.Errorf("%w: field %s is missing", ErrMalformed, name)
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("%w: field %s is a %T, not a string", ErrMalformed, name, v)
		}
		return s, nil
	}
	num := func(name string) (int64, error) {
		s, err := str(name)
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: field %s is not an integer: %q", ErrMalformed, name, s)
		}
		return n, nil
	}

	var e Event
	var err error
	if e.ID, err = str(FieldEventID); err != nil {
		return Event{}, err
	}
	typ, err := str(FieldType)
	if err != nil {
		return Event{}, err
	}
	e.Type = Type(typ) // Validate, below, refuses an unknown type
	if e.ConferenceID, err = num(FieldConferenceID); err != nil {
		return Event{}, err
	}
	if e.Version, err = num(FieldVersion); err != nil {
		return Event{}, err
	}
	at, err := str(FieldOccurredAt)
	if err != nil {
		return Event{}, err
	}
	if e.OccurredAt, err = time.Parse(time.RFC3339Nano, at); err != nil {
		return Event{}, fmt.Errorf("%w: field %s is not RFC 3339: %q", ErrMalformed, FieldOccurredAt, at)
	}
	e.OccurredAt = e.OccurredAt.UTC()
	data, err := str(FieldData)
	if err != nil {
		return Event{}, err
	}
	if data != "" {
		if e.Data, err = ParseData([]byte(data)); err != nil {
			return Event{}, err
		}
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}
