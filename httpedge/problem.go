// Package httpedge is the HTTP edge that api-conference and api-attendee share: problem+json
// errors, the JSON object decoder with its field errors, the middleware every request passes
// (metrics, CORS, deadline, refusal of compressed bodies, body limit), the lingering-close
// listener, and the health, readiness and metrics handlers. What each error of a domain means
// stays in that service, which hands it in as a Translate func.
package httpedge

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gofiber/fiber/v2"
)

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
}

// FieldError says what is wrong with one input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// NewProblem returns the problem of status with detail, the one the client reads.
func NewProblem(status int, detail string) *Problem {
	return &Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail}
}

// FieldsProblem is the 400 of an input with invalid fields, each named with its message.
func FieldsProblem(fields []FieldError) *Problem {
	p := NewProblem(http.StatusBadRequest, "the request has invalid fields; see errors")
	p.Errors = fields
	return p
}

// Translate turns an error of a service's domain into its problem, or returns nil for an
// error it does not know.
type Translate func(err error) *Problem

// toProblem is the one table from errors to statuses: this package's own input errors, then
// the service's domain (translate), then fiber's errors and deadlines. Anything no one knows
// is a 500, whose detail the client does not see.
func toProblem(err error, translate Translate) *Problem {
	var (
		fields   FieldErrors
		fiberErr *fiber.Error
	)
	switch {
	case errors.As(err, &fields):
		return FieldsProblem(fields)
	case errors.Is(err, ErrInvalid):
		return NewProblem(http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNotFound):
		return NewProblem(http.StatusNotFound, err.Error())
	}
	if translate != nil {
		if p := translate(err); p != nil {
			return p
		}
	}
	switch {
	case errors.As(err, &fiberErr):
		return NewProblem(fiberErr.Code, fiberErr.Message)
	case errors.Is(err, context.DeadlineExceeded):
		return NewProblem(http.StatusServiceUnavailable, "the request took too long; try again")
	default:
		return NewProblem(http.StatusInternalServerError, "internal error; it has been logged")
	}
}

// ErrorHandler renders err as problem+json and logs server-side failures.
func ErrorHandler(log *slog.Logger, translate Translate) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		p := toProblem(err, translate)
		p.Instance = c.OriginalURL()
		if p.Status >= 500 {
			log.ErrorContext(c.UserContext(), "request failed",
				"method", c.Method(), "path", c.Path(), "status", p.Status, "err", err)
		}
		if p.Status == http.StatusServiceUnavailable {
			c.Set(fiber.HeaderRetryAfter, "1")
		}
		if p.Status == http.StatusMethodNotAllowed && c.GetRespHeader(fiber.HeaderAllow) == "" {
			c.Set(fiber.HeaderAllow, "GET, HEAD")
		}
		return c.Status(p.Status).JSON(p, "application/problem+json")
	}
}

// Domain names the error kinds a service's domain package defines, which every service
// answers alike: Invalid 400, NotFound 404 and Conflict 409 with the error's text, and
// Unavailable 503 with a text that tells the client only to retry.
type Domain struct {
	Invalid, NotFound, Conflict, Unavailable error
}

// Translate answers err by the first kind of d it is, or returns nil.
func (d Domain) Translate(err error) *Problem {
	switch {
	case errors.Is(err, d.Invalid):
		return NewProblem(http.StatusBadRequest, err.Error())
	case errors.Is(err, d.NotFound):
		return NewProblem(http.StatusNotFound, err.Error())
	case errors.Is(err, d.Conflict):
		return NewProblem(http.StatusConflict, err.Error())
	case errors.Is(err, d.Unavailable):
		// A dependency (the database) went away mid-request: not the client's fault, and
		// worth retrying. The cause is the server's to log, not the client's to read.
		return NewProblem(http.StatusServiceUnavailable, "the database is not answering; try again shortly")
	}
	return nil
}

// FieldsOf converts a domain's field errors, of FieldError's shape, for FieldsProblem.
func FieldsOf[F ~struct{ Field, Message string }](fields []F) []FieldError {
	out := make([]FieldError, len(fields))
	for i, f := range fields {
		out[i] = FieldError(f)
	}
	return out
}
