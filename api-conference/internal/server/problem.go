package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"conferencego/api-conference/internal/conference"
	"conferencego/syncer/changeevent"
)

// problem is an RFC 9457 problem details body.
type problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []fieldError `json:"errors,omitempty"`
}

type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// toProblem is the one table from errors to statuses. Anything it does not know is a 500,
// whose detail the client does not see.
func toProblem(err error) problem {
	var (
		validation *conference.ValidationError
		fiberErr   *fiber.Error
	)
	p := problem{Type: "about:blank"}
	switch {
	case errors.As(err, &validation):
		p.Status = http.StatusBadRequest
		p.Detail = "the request has invalid fields; see errors"
		for _, f := range validation.Fields {
			p.Errors = append(p.Errors, fieldError{Field: f.Field, Message: f.Message})
		}
	case errors.Is(err, conference.ErrInvalid):
		p.Status, p.Detail = http.StatusBadRequest, err.Error()
	case errors.Is(err, conference.ErrNotFound):
		p.Status, p.Detail = http.StatusNotFound, err.Error()
	case errors.Is(err, conference.ErrGone):
		p.Status = http.StatusGone
		p.Detail = "the cursor is older than the history this source keeps: list " + changeevent.PathState +
			" again and follow " + changeevent.PathFeed + " from that listing's cursor"
	case errors.Is(err, conference.ErrConflict):
		p.Status, p.Detail = http.StatusConflict, err.Error()
	case errors.As(err, &fiberErr):
		p.Status, p.Detail = fiberErr.Code, fiberErr.Message
	case errors.Is(err, conference.ErrUnavailable):
		p.Status, p.Detail = http.StatusServiceUnavailable, "the database is not answering; try again shortly"
	case errors.Is(err, context.DeadlineExceeded):
		p.Status, p.Detail = http.StatusServiceUnavailable, "the request took too long; try again"
	default:
		p.Status, p.Detail = http.StatusInternalServerError, "internal error; it has been logged"
	}
	p.Title = http.StatusText(p.Status)
	return p
}

// errorHandler renders err as problem+json and logs server-side failures.
func errorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		p := toProblem(err)
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
