package httpedge

import (
	"errors"
	"strings"
)

// The input errors this package reports itself, before a request reaches a service's domain.
// ErrorHandler answers them 400 and 404 without asking the service's Translate.
var (
	// ErrInvalid is a body or parameter that cannot be read: not JSON, not an object, not UTF-8.
	ErrInvalid = errors.New("invalid")
	// ErrNotFound is a path id that no resource can have (IDParam).
	ErrNotFound = errors.New("not found")
)

// FieldErrors are every invalid field of one input, reported at once so that a client can
// fix them together. It matches ErrInvalid with errors.Is.
type FieldErrors []FieldError

func (fe FieldErrors) Error() string {
	parts := make([]string, len(fe))
	for i, f := range fe {
		parts[i] = f.Field + ": " + f.Message
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true for FieldErrors.
func (fe FieldErrors) Is(target error) bool { return target == ErrInvalid }

// invalidField is the FieldErrors of one field.
func invalidField(field, message string) error {
	return FieldErrors{{Field: field, Message: message}}
}
