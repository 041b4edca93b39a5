// Package attendee is the attendee context's domain: the local copy of conferences
// (ConferenceVO), attendees and badges, the registration rules, and how a batch of change
// events is normalised before it is applied. It knows nothing of HTTP, SQL or Redis; the
// server, postgres and redisstream packages translate at their edges.
package attendee

import (
	"fmt"

	"conferencego/service/domainerr"
)

// The attendee context fails in the kinds both services share (domainerr), re-exported here
// so that this package's callers need no other import; server maps each to one HTTP status.
var (
	ErrNotFound    = domainerr.ErrNotFound    // no such attendee, or conference in the copy
	ErrConflict    = domainerr.ErrConflict    // the conference is full, the e-mail registered
	ErrInvalid     = domainerr.ErrInvalid     // an input breaks a rule (see ValidationError)
	ErrUnavailable = domainerr.ErrUnavailable // the database failed, not the request
	// ErrSourceMismatch is a hand-over from another source than the one the copy is made
	// from. It is a conflict: the state of the copy, not the request, is what refuses it.
	ErrSourceMismatch = fmt.Errorf("%w: another source", ErrConflict)
)

type (
	// FieldError says what is wrong with one input field.
	FieldError = domainerr.FieldError
	// ValidationError lists every problem of one input at once, so a client can fix them
	// together. It matches ErrInvalid with errors.Is.
	ValidationError = domainerr.ValidationError
)

// Invalid returns a ValidationError for a single field.
var Invalid = domainerr.Invalid
