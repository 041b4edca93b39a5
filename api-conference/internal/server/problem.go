package server

import (
	"errors"
	"net/http"

	"conferencego/api-conference/internal/conference"
	"conferencego/httpedge"
	"conferencego/syncer/changeevent"
)

// toProblem is the one table from the conference domain's errors to statuses. httpedge
// answers everything else: its own input errors, fiber's, deadlines, and the 500 of an error
// no one knows.
func toProblem(err error) *httpedge.Problem {
	var validation *conference.ValidationError
	switch {
	case errors.As(err, &validation):
		return httpedge.FieldsProblem(httpedge.FieldsOf(validation.Fields))
	case errors.Is(err, conference.ErrGone):
		return httpedge.NewProblem(http.StatusGone, "the cursor is older than the history this source keeps: list "+
			changeevent.PathState+" again and follow "+changeevent.PathFeed+" from that listing's cursor")
	}
	return httpedge.Domain{
		Invalid:     conference.ErrInvalid,
		NotFound:    conference.ErrNotFound,
		Conflict:    conference.ErrConflict,
		Unavailable: conference.ErrUnavailable,
	}.Translate(err)
}
