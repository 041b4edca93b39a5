// Package attendee is the attendee context's domain: the local copy of conferences
// (ConferenceVO), attendees and badges, the registration rules, and how a batch of change
// events is normalised before it is applied. It knows nothing of HTTP, SQL or Redis; the
// server, postgres and redisstream packages translate at their edges.
package attendee

import (
	"errors"
	"fmt"
	"strings"
)

// The kinds of failure every layer reports; server maps each to one HTTP status.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
	// ErrUnavailable is a failure of a dependency (the database went away mid-request): not
	// the client's fault, and worth retrying.
	ErrUnavailable = errors.New("temporarily unavailable")
	// ErrSourceMismatch is a hand-over from another source than the one the copy is made
	// from. It is a conflict: the state of the copy, not the request, is what refuses it.
	ErrSourceMismatch = fmt.Errorf("%w: another source", ErrConflict)
)

// FieldError says what is wrong with one input field.
type FieldError struct {
	Field   string
	Message string
}

// ValidationError lists every problem of one input at once, so a client can fix them together.
// It matches ErrInvalid with errors.Is.
type ValidationError struct {
	Fields []FieldError
}

// Add records a problem with field.
func (v *ValidationError) Add(field, message string) {
	v.Fields = append(v.Fields, FieldError{Field: field, Message: message})
}

// Err returns v as an error, or nil when it holds no problem.
func (v *ValidationError) Err() error {
	if v == nil || len(v.Fields) == 0 {
		return nil
	}
	return v
}

func (v *ValidationError) Error() string {
	parts := make([]string, len(v.Fields))
	for i, f := range v.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true for a ValidationError.
func (v *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Invalid returns a ValidationError for a single field.
func Invalid(field, message string) error {
	return &ValidationError{Fields: []FieldError{{Field: field, Message: message}}}
}
