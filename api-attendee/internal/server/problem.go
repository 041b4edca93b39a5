package server

import (
	"errors"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/httpedge"
)

// domainErrors are the attendee domain's error kinds, each answered with its status.
var domainErrors = httpedge.Domain{
	Invalid: attendee.ErrInvalid, NotFound: attendee.ErrNotFound,
	Conflict: attendee.ErrConflict, Unavailable: attendee.ErrUnavailable,
}

// toProblem maps the attendee domain's errors to problems: its validation errors field by
// field, the rest by kind. httpedge answers everything else.
func toProblem(err error) *httpedge.Problem {
	if validation := (*attendee.ValidationError)(nil); errors.As(err, &validation) {
		return httpedge.FieldsProblem(httpedge.FieldsOf(validation.Fields))
	}
	return domainErrors.Translate(err)
}
