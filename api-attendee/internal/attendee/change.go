package attendee

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"conferencego/syncer/changeevent"
)

// Limits on what a change may carry. They are looser than api-conference's own input rules on
// purpose: the source has validated its data, and refusing a change it considers valid would
// leave the copy behind. They only keep every value storable and renderable.
const (
	maxChangeTextLen = 10000
	maxChangeHrefLen = 2000
	minYear          = 1
	maxYear          = 9999
)

// Change is a change event the copy can store. It is checked once, where it enters the
// service: DecodeChange for a stream entry, ChangeFrom for a hand-over's JSON, CheckChange for
// an event made in code. Those are the only ways to make one, so a Batch or a Repair holding
// Changes has been checked, and the compiler shows it: Normalize and the store do not check
// again. The contract's rules (changeevent's Validate) run once per change too: Decode and
// changeevent.Change.Event already apply them, so the edge constructors add only the limits of
// the copy (checkLimits). The zero Change is no change at all: only a mistake makes one.
type Change struct {
	event changeevent.Event
}

// Event returns the checked event.
func (c Change) Event() changeevent.Event { return c.event }

// Batch is a set of checked changes that are applied together, in one transaction.
type Batch struct {
	Changes []Change
}

// NewBatch checks events with CheckChange and returns them as a Batch, or a ValidationError
// that names every bad one by its index (changes[i]): one bad change refuses the batch whole.
func NewBatch(events ...changeevent.Event) (Batch, error) {
	return batchOf(events, CheckChange)
}

// BatchFrom is NewBatch for the changes of a hand-over, each checked with ChangeFrom.
func BatchFrom(changes []changeevent.Change) (Batch, error) {
	return batchOf(changes, ChangeFrom)
}

func batchOf[T any](in []T, check func(T) (Change, error)) (Batch, error) {
	var v ValidationError
	b := Batch{Changes: make([]Change, 0, len(in))}
	for i, x := range in {
		c, err := check(x)
		if err != nil {
			v.Add(fmt.Sprintf("changes[%d]", i), err.Error())
			continue
		}
		b.Changes = append(b.Changes, c)
	}
	if err := v.Err(); err != nil {
		return Batch{}, err
	}
	return b, nil
}

// ApplyResult counts what applying a batch did.
type ApplyResult struct {
	// Changes is the number of distinct conferences in the batch.
	Changes int
	// Applied is how many of them changed a row; the rest were no newer than what was stored.
	Applied int
	// Lags holds, for each applied change, applied_at - occurred_at: how long the change took
	// from the source to this copy.
	Lags []time.Duration
}

// Normalize returns b's changes with at most one per conference, the newest, sorted by
// conference id. Applying changes in one order everywhere also makes concurrent batches take
// their row locks in the same order, so they cannot deadlock. The changes were checked when
// they were made (see Change), so nothing here can be refused.
func (b Batch) Normalize() []changeevent.Event {
	newest := make(map[int64]changeevent.Event, len(b.Changes))
	for _, c := range b.Changes {
		e := c.event
		if old, ok := newest[e.ConferenceID]; ok && !newer(e, old) {
			continue
		}
		newest[e.ConferenceID] = e
	}
	out := make([]changeevent.Event, 0, len(newest))
	for _, e := range newest {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b changeevent.Event) int { return cmp.Compare(a.ConferenceID, b.ConferenceID) })
	return out
}

// newer reports whether a supersedes b, two changes of one conference. At equal versions a
// delete wins, because nothing follows a delete at the source.
func newer(a, b changeevent.Event) bool {
	if a.Version != b.Version {
		return a.Version > b.Version
	}
	return a.Type == changeevent.Deleted && b.Type != changeevent.Deleted
}

// CheckChange checks e, an event made in code rather than decoded at an edge, against the
// contract's rules and the limits of the copy, and returns it as a Change. An error wraps
// ErrInvalid and changeevent.ErrMalformed: retrying e cannot succeed.
func CheckChange(e changeevent.Event) (Change, error) {
	if err := e.Validate(); err != nil {
		return Change{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return checkLimits(e)
}

// DecodeChange decodes the values of a stream entry (changeevent.Decode, which applies the
// contract's rules) and checks them against the limits of the copy. An error wraps
// changeevent.ErrMalformed, and ErrInvalid too when only the limits refuse it.
func DecodeChange(values map[string]any) (Change, error) {
	e, err := changeevent.Decode(values)
	if err != nil {
		return Change{}, err
	}
	return checkLimits(e)
}

// ChangeFrom converts a change of a hand-over (changeevent.Change.Event, which applies the
// contract's rules) and checks it against the limits of the copy. Its errors are those of
// DecodeChange.
func ChangeFrom(c changeevent.Change) (Change, error) {
	e, err := c.Event()
	if err != nil {
		return Change{}, err
	}
	return checkLimits(e)
}

// checkLimits checks what the copy can hold, for e that has passed the contract's rules.
func checkLimits(e changeevent.Event) (Change, error) {
	var problems []string
	if y := e.OccurredAt.Year(); y < minYear || y > maxYear {
		problems = append(problems, "occurred_at is out of range")
	}
	text := func(name, s string, limit int) {
		switch {
		case !utf8.ValidString(s):
			problems = append(problems, name+" is not valid UTF-8")
		case utf8.RuneCountInString(s) > limit:
			problems = append(problems, fmt.Sprintf("%s is longer than %d characters", name, limit))
		case strings.ContainsRune(s, 0):
			problems = append(problems, name+" contains NUL")
		}
	}
	if d := e.Data; d != nil {
		text("data.name", d.Name, maxChangeTextLen)
		text("data.href", d.Href, maxChangeHrefLen)
		for name, t := range map[string]time.Time{"data.starts": d.Starts, "data.ends": d.Ends} {
			if y := t.UTC().Year(); y < minYear || y > maxYear {
				problems = append(problems, fmt.Sprintf("%s is outside the years %d to %d", name, minYear, maxYear))
			}
		}
		if d.MaxAttendees > math.MaxInt32 {
			problems = append(problems, "data.max_attendees is too large")
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return Change{}, fmt.Errorf("%w: %w: %s", ErrInvalid, changeevent.ErrMalformed, strings.Join(problems, "; "))
	}
	return Change{event: e}, nil
}

// ImportHref is the href a change gives its conference: the payload's, or the canonical one.
func ImportHref(e changeevent.Event) string {
	if e.Data != nil && e.Data.Href != "" {
		return e.Data.Href
	}
	return changeevent.Href(e.ConferenceID)
}

// Repair sets the copy of one conference to what the source holds, even below the copy's
// version: the copy can be ahead of the source only by a fault (a forged or foreign change).
type Repair struct {
	ConferenceID int64
	// Replaces is the copy's version when the repair was decided; the repair applies only
	// while the copy still holds it.
	Replaces int64
	// Change is the source's state, checked at the edge like every Change; nil when the source
	// does not know the conference, which leaves a tombstone of version 0.
	Change *Change
}

// CheckRepairs validates repairs (their changes were checked when they were made) and returns them sorted by conference id (one lock order for
// everyone), each conference at most once.
func CheckRepairs(repairs []Repair) ([]Repair, error) {
	var v ValidationError
	seen := make(map[int64]bool, len(repairs))
	for i, r := range repairs {
		field := fmt.Sprintf("repairs[%d]", i)
		switch {
		case r.ConferenceID <= 0:
			v.Add(field, "conference_id must be positive")
		case r.Replaces < 0:
			v.Add(field, "replaces must not be negative")
		case seen[r.ConferenceID]:
			v.Add(field, fmt.Sprintf("conference %d is repaired twice", r.ConferenceID))
		case r.Change != nil && r.Change.event.ConferenceID != r.ConferenceID:
			v.Add(field, "change.conference_id differs from conference_id")
		}
		seen[r.ConferenceID] = true
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	out := slices.Clone(repairs)
	slices.SortFunc(out, func(a, b Repair) int { return cmp.Compare(a.ConferenceID, b.ConferenceID) })
	return out, nil
}
