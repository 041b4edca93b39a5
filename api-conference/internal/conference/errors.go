// Package conference is the conference context's domain: states, locations, conferences and
// presentations, the rules they obey, and the errors those rules produce. It knows nothing of
// HTTP or SQL; the server and postgres packages translate at their edges.
package conference

import (
	"errors"
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
	// ErrGone is a change-feed cursor older than the history the source still keeps: the
	// client must list the state again and follow the feed from that listing's cursor.
	ErrGone = errors.New("gone")
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
