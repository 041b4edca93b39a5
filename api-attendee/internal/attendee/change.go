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
	// Complete says that Changes list every live conference at the source (a snapshot, as
	// pull mode's reconcile sends): every conference stored as live and absent from Changes is
	// then tombstoned. A complete batch must not be empty and must hold no deletes.
	Complete bool
	// TakenAt is when reading a complete batch at the source began. Conferences changed at the
	// source after it are not tombstoned for their absence (they may be newer than the
	// snapshot), and it becomes the occurred_at of the tombstones it infers. Zero means no such
	// guard, and the time of applying.
	TakenAt time.Time
}

// ApplyResult counts what applying a batch did.
type ApplyResult struct {
	// Changes is the number of distinct conferences in the batch.
	Changes int
	// Applied is how many of them changed a row; the rest were no newer than what was stored.
	Applied int
	// Tombstoned is how many live conferences a complete batch found absent and tombstoned.
	Tombstoned int
	// Lags holds, for each applied change, applied_at - occurred_at: how long the change took
	// from the source to this copy.
	Lags []time.Duration
}

// Normalize validates b and returns its changes with at most one per conference, the newest,
// sorted by conference id. Applying changes in one order everywhere also makes concurrent
// batches take their row locks in the same order, so they cannot deadlock.
func (b Batch) Normalize() ([]changeevent.Event, error) {
	var v ValidationError
	if b.Complete && len(b.Changes) == 0 {
		v.Add("changes", "an empty snapshot is refused: it would tombstone every conference")
	}
	newest := make(map[int64]changeevent.Event, len(b.Changes))
	for i, e := range b.Changes {
		field := fmt.Sprintf("changes[%d]", i)
		if err := CheckChange(e); err != nil {
			v.Add(field, err.Error())
			continue
		}
		if b.Complete && e.Type == changeevent.Deleted {
			v.Add(field, "a snapshot lists live conferences only; send deletes as changes")
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
