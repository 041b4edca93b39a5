// Package server is api-attendee's HTTP layer: fiber routes, JSON shapes, problem+json
// errors, CORS, health, metrics, and the token-protected internal endpoint through which pull
// mode hands over conference changes. It converts between JSON and the attendee package's
// types and leaves every rule to the domain and the store.
package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"

	"conferencego/api-attendee/internal/postgres"
)

// BodyLimit is the largest request body the public API accepts; larger ones get 413.
const BodyLimit = 1 << 20

// InternalBodyLimit is the largest body of the internal endpoint: the syncer hands changes
// in chunks of 500 and the longest change is about 20 KiB, so 16 MiB leaves room to spare.
const InternalBodyLimit = 16 << 20

// requestTimeout bounds the work of one request, so a stuck query cannot hold a connection.
const requestTimeout = 15 * time.Second

// Check is a dependency that /readyz asks.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// Options are the settings of the HTTP layer.
type Options struct {
	// CORSAllowedOrigins are the origins whose pages may call the API ("*" allows any).
	CORSAllowedOrigins []string
	// Registry receives the HTTP metrics; /metrics serves it. Nil means a new one.
	Registry *prometheus.Registry
	// SyncToken is the bearer token the internal endpoint requires. Empty turns the endpoint
	// off: every call is answered 401.
	SyncToken string
	// ReadyChecks are asked by /readyz besides the database (Redis, in push mode).
	ReadyChecks []Check
}

// New returns the app serving every route of api-attendee.
func New(log *slog.Logger, store *postgres.Store, opts Options) *fiber.App {
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	handleErr := errorHandler(log)
	app := fiber.New(fiber.Config{
		AppName:      "api-attendee",
		ErrorHandler: handleErr,
		// The server reads bodies up to the internal endpoint's limit; the public routes
		// refuse anything over BodyLimit themselves (limitBody).
		BodyLimit:             InternalBodyLimit,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           2 * time.Minute,
		DisableStartupMessage: true,
	})
	app.Use(observe(newHTTPMetrics(opts.Registry), handleErr))
	app.Use(recover.New())
	app.Use(cors.New(cors.Config{
		AllowOrigins:  strings.Join(opts.CORSAllowedOrigins, ","),
		AllowMethods:  "GET,HEAD,POST,PUT,DELETE,OPTIONS",
		AllowHeaders:  "Content-Type,Authorization",
		ExposeHeaders: "Location",
		MaxAge:        600,
	}))
	app.Use(withTimeout)
	app.Use(refuseContentEncoding)
	checks := append([]Check{{Name: "database", Ping: store.Ping}}, opts.ReadyChecks...)
	routes(app, log, store, opts, checks)
	return app
}

// withTimeout gives every request a context with a deadline; handlers pass it on.
func withTimeout(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
	defer cancel()
	c.SetUserContext(ctx)
	return c.Next()
}

// refuseContentEncoding answers 415 to a compressed body. Fiber would inflate it without a
// bound when the body is read, so a one-megabyte gzip bomb could take gigabytes of memory.
func refuseContentEncoding(c *fiber.Ctx) error {
	if enc := strings.TrimSpace(c.Get(fiber.HeaderContentEncoding)); enc != "" && !strings.EqualFold(enc, "identity") {
		return fiber.NewError(fiber.StatusUnsupportedMediaType, "send the body uncompressed, without Content-Encoding")
	}
	return c.Next()
}

// limitBody refuses bodies over limit with 413.
func limitBody(limit int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if len(c.Body()) > limit {
			return fiber.ErrRequestEntityTooLarge
		}
		return c.Next()
	}
}

// observe is the outermost middleware: it renders any error as problem+json here, so that the
// metrics see the status the client sees, then counts the request.
func observe(m *httpMetrics, handleErr fiber.ErrorHandler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		start := time.Now()
		if err := c.Next(); err != nil {
			if herr := handleErr(c, err); herr != nil {
				return errors.Join(err, herr)
			}
		}
		route := "unmatched"
		if r := c.Route(); r != nil && r.Path != "/" {
			route = r.Path
		}
		// The method string aliases fasthttp's buffer, which the next request on this
		// connection overwrites; the metric keeps its labels, so it gets a copy.
		m.observe(strings.Clone(c.Method()), route, c.Response().StatusCode(), len(c.Response().Body()), time.Since(start))
		return nil
	}
}

func health(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

func ready(checks []Check) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
		defer cancel()
		for _, check := range checks {
			if err := check.Ping(ctx); err != nil {
				return fiber.NewError(fiber.StatusServiceUnavailable, check.Name+" is not answering")
			}
		}
		return c.JSON(fiber.Map{"status": "ready"})
	}
}
