// Package conference is the conference context's domain: states, locations, conferences and
// presentations, the rules they obey, and the errors those rules produce. It knows nothing of
// HTTP or SQL; the server and postgres packages translate at their edges.
package conference

import (
	"errors"

	"conferencego/service/domainerr"
)

// The kinds of failure every layer reports; server maps each to one HTTP status. The first
// four are the kinds both services share (domainerr), so that the postgres and HTTP edges
// common to both test the same values.
var (
	// ErrNotFound: no such state, location, conference or presentation.
	ErrNotFound = domainerr.ErrNotFound
	// ErrConflict: what is stored refuses the change (a location that still has conferences).
	ErrConflict = domainerr.ErrConflict
	// ErrInvalid: the input breaks a rule; a ValidationError says which fields.
	ErrInvalid = domainerr.ErrInvalid
	// ErrUnavailable: the database failed, not the request; worth retrying.
	ErrUnavailable = domainerr.ErrUnavailable
	// ErrGone is a change-feed cursor older than the history the source still keeps: the
	// client must list the state again and follow the feed from that listing's cursor.
	ErrGone = errors.New("gone")
)

// FieldError says what is wrong with one input field.
type FieldError = domainerr.FieldError

// ValidationError lists every problem of one input at once; it matches ErrInvalid.
type ValidationError = domainerr.ValidationError

// Invalid returns a ValidationError for a single field.
func Invalid(field, message string) error { return domainerr.Invalid(field, message) }
