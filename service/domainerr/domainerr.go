// Package domainerr holds the kinds of failure both services' domains report, so that the
// layers around a domain (postgres, server, the shared HTTP edge) test one set of errors with
// errors.Is whichever service they serve. Each domain package re-exports them under its own
// name, and adds the kinds that only it has.
package domainerr

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"
)

// The kinds of failure every layer reports; the HTTP layer maps each to one status.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
	// ErrUnavailable is a failure of a dependency (the database went away mid-request): not
	// the client's fault, and worth retrying.
	ErrUnavailable = errors.New("temporarily unavailable")
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

// Known reports whether err is already of one of the kinds, so a layer that translates
// driver errors can leave it as it is.
func Known(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) ||
		errors.Is(err, ErrInvalid) || errors.Is(err, ErrUnavailable)
}

// CheckText records a problem with field unless s is valid UTF-8 of at most limit characters
// without NUL: Postgres text cannot hold NUL, and refusing it here keeps it a 400, not a 500.
func (v *ValidationError) CheckText(field, s string, limit int) {
	switch {
	case !utf8.ValidString(s):
		v.Add(field, "must be valid UTF-8")
	case utf8.RuneCountInString(s) > limit:
		v.Add(field, fmt.Sprintf("must be at most %d characters", limit))
	case strings.ContainsRune(s, 0):
		v.Add(field, "must not contain NUL characters")
	}
}

// CheckEmail records a problem with field unless s is one plain address (name@host.tld) of
// at most limit bytes: what both services store and match on.
func (v *ValidationError) CheckEmail(field, s string, limit int) {
	if s == "" {
		v.Add(field, "must not be empty")
		return
	}
	if len(s) > limit {
		v.Add(field, fmt.Sprintf("must be at most %d characters", limit))
		return
	}
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		v.Add(field, "must be an e-mail address like name@example.com")
		return
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		v.Add(field, "must be an e-mail address like name@example.com")
	}
}
