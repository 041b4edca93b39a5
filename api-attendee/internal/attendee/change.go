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

// Batch is a set of changes that are applied together, in one transaction.
type Batch struct {
	Changes []changeevent.Event
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

// Normalize validates b and returns its changes with at most one per conference, the newest,
// sorted by conference id. Applying changes in one order everywhere also makes concurrent
// batches take their row locks in the same order, so they cannot deadlock.
func (b Batch) Normalize() ([]changeevent.Event, error) {
	var v ValidationError
	newest := make(map[int64]changeevent.Event, len(b.Changes))
	for i, e := range b.Changes {
		field := fmt.Sprintf("changes[%d]", i)
		if err := CheckChange(e); err != nil {
			v.Add(field, err.Error())
			continue
		}
		if old, ok := newest[e.ConferenceID]; ok && !newer(e, old) {
			continue
		}
		newest[e.ConferenceID] = e
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	out := make([]changeevent.Event, 0, len(newest))
	for _, e := range newest {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b changeevent.Event) int { return cmp.Compare(a.ConferenceID, b.ConferenceID) })
	return out, nil
}

// newer reports whether a supersedes b, two changes of one conference. At equal versions a
// delete wins, because nothing follows a delete at the source.
func newer(a, b changeevent.Event) bool {
	if a.Version != b.Version {
		return a.Version > b.Version
	}
	return a.Type == changeevent.Deleted && b.Type != changeevent.Deleted
}

// CheckChange reports whether e can be stored: the contract's own rules, and the limits of
// what the copy can hold. An error wraps ErrInvalid and changeevent.ErrMalformed: retrying e
// cannot succeed.
func CheckChange(e changeevent.Event) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
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
		return fmt.Errorf("%w: %w: %s", ErrInvalid, changeevent.ErrMalformed, strings.Join(problems, "; "))
	}
	return nil
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
	// Change is the source's state; nil when the source does not know the conference, which
	// leaves a tombstone of version 0.
	Change *changeevent.Event
}

// CheckRepairs validates repairs and returns them sorted by conference id (one lock order for
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
		case r.Change != nil && r.Change.ConferenceID != r.ConferenceID:
			v.Add(field, "change.conference_id differs from conference_id")
		case r.Change != nil:
			if err := CheckChange(*r.Change); err != nil {
				v.Add(field, err.Error())
			}
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
