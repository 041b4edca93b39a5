package httpedge_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/google/go-cmp/cmp"

	"conferencego/httpedge"
)

func TestErrorsBecomeProblems(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t)
	errs := map[string]error{
		"fields":    httpedge.FieldErrors{{Field: "name", Message: "is required"}},
		"invalid":   fmt.Errorf("%w: the body is not JSON", httpedge.ErrInvalid),
		"notfound":  fmt.Errorf("thing %q: %w", "x", httpedge.ErrNotFound),
		"domain":    fmt.Errorf("feed: %w", errGone),
		"fiber":     fiber.NewError(http.StatusConflict, "taken"),
		"deadline":  fmt.Errorf("query: %w", context.DeadlineExceeded),
		"unknown":   errors.New("connection string postgres://secret@db"),
		"wrapsboth": fmt.Errorf("%w: %w", errGone, context.DeadlineExceeded),
	}
	app.Get("/fail/:kind", func(c *fiber.Ctx) error { return errs[c.Params("kind")] })
	for _, tc := range []struct {
		kind string
		want httpedge.Problem
	}{
		{"fields", httpedge.Problem{Status: 400, Detail: "the request has invalid fields; see errors",
			Errors: []httpedge.FieldError{{Field: "name", Message: "is required"}}}},
		{"invalid", httpedge.Problem{Status: 400, Detail: "invalid: the body is not JSON"}},
		{"notfound", httpedge.Problem{Status: 404, Detail: `thing "x": not found`}},
		{"domain", httpedge.Problem{Status: 410, Detail: "the cursor is too old"}},
		{"fiber", httpedge.Problem{Status: 409, Detail: "taken"}},
		{"deadline", httpedge.Problem{Status: 503, Detail: "the request took too long; try again"}},
		// The client never sees what an unknown error says.
		{"unknown", httpedge.Problem{Status: 500, Detail: "internal error; it has been logged"}},
		// The service's translation wins over the generic rules.
		{"wrapsboth", httpedge.Problem{Status: 410, Detail: "the cursor is too old"}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			path := "/fail/" + tc.kind + "?q=1"
			r := send(t, app, "GET", path, "")
			got := problemOf(t, r, tc.want.Status)
			tc.want.Type, tc.want.Title, tc.want.Instance = "about:blank", http.StatusText(tc.want.Status), path
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problem (-want +got):\n%s", diff)
			}
			if retry := r.header.Get("Retry-After"); (tc.want.Status == 503) != (retry == "1") {
				t.Errorf("Retry-After %q on a %d", retry, tc.want.Status)
			}
		})
	}
}

func TestRoutingProblems(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t)
	app.Get("/thing", func(c *fiber.Ctx) error { return c.SendString("ok") })
	problemOf(t, send(t, app, "GET", "/nothing", ""), 404)
	r := send(t, app, "DELETE", "/thing", "")
	problemOf(t, r, 405)
	if allow := r.header.Get("Allow"); allow == "" {
		t.Error("a 405 without Allow")
	}
}

// A Translate that knows nothing leaves every error to the generic rules.
func TestNilTranslate(t *testing.T) {
	t.Parallel()
	app := fiber.New(fiber.Config{ErrorHandler: httpedge.ErrorHandler(discard(), nil)})
	app.Get("/", func(c *fiber.Ctx) error { return errGone })
	problemOf(t, send(t, app, "GET", "/", ""), 500)
}

func TestDomainTranslate(t *testing.T) {
	t.Parallel()
	var (
		errInvalid     = errors.New("invalid")
		errNotFound    = errors.New("not found")
		errConflict    = errors.New("conflict")
		errUnavailable = errors.New("temporarily unavailable")
	)
	d := httpedge.Domain{Invalid: errInvalid, NotFound: errNotFound, Conflict: errConflict, Unavailable: errUnavailable}
	for _, tc := range []struct {
		err        error
		status     int
		detail     string
		translated bool
	}{
		{fmt.Errorf("%w: ends before starts", errInvalid), 400, "invalid: ends before starts", true},
		{fmt.Errorf("conference 7: %w", errNotFound), 404, "conference 7: not found", true},
		{fmt.Errorf("%w: the conference is full", errConflict), 409, "conflict: the conference is full", true},
		{fmt.Errorf("%w: dial tcp 10.0.0.7:5432", errUnavailable), 503, "the database is not answering; try again shortly", true},
		{errors.New("something else"), 0, "", false},
		{errGone, 0, "", false},
	} {
		p := d.Translate(tc.err)
		if (p != nil) != tc.translated {
			t.Errorf("%v: translated %v, want %v", tc.err, p != nil, tc.translated)
			continue
		}
		if p != nil && (p.Status != tc.status || p.Detail != tc.detail || p.Title != http.StatusText(tc.status)) {
			t.Errorf("%v: %+v, want %d %q", tc.err, p, tc.status, tc.detail)
		}
	}
}

func TestFieldsOf(t *testing.T) {
	t.Parallel()
	type domainFieldError struct{ Field, Message string }
	got := httpedge.FieldsOf([]domainFieldError{{"name", "is required"}, {"email", "is not an e-mail address"}})
	want := []httpedge.FieldError{{Field: "name", Message: "is required"}, {Field: "email", Message: "is not an e-mail address"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FieldsOf (-want +got):\n%s", diff)
	}
}
