// Package server is api-conference's HTTP layer: fiber routes, JSON shapes, problem+json
// errors, CORS, health and metrics. It converts between JSON and the conference package's
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

	"conferencego/api-conference/internal/postgres"
)

// BodyLimit is the largest request body accepted; larger ones get 413.
const BodyLimit = 1 << 20

// requestTimeout bounds the work of one request, so a stuck query cannot hold a connection.
const requestTimeout = 15 * time.Second

// Options are the settings of the HTTP layer.
type Options struct {
	// CORSAllowedOrigins are the origins whose pages may call the API ("*" allows any).
	CORSAllowedOrigins []string
	// Registry receives the HTTP metrics; /metrics serves it. Nil means a new one.
	Registry *prometheus.Registry
}

// New returns the app serving every route of api-conference.
func New(log *slog.Logger, store *postgres.Store, opts Options) *fiber.App {
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	handleErr := errorHandler(log)
	app := fiber.New(fiber.Config{
		AppName:               "api-conference",
		ErrorHandler:          handleErr,
		BodyLimit:             BodyLimit,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           2 * time.Minute,
		DisableStartupMessage: true,
	})
	app.Use(observe(log, newHTTPMetrics(opts.Registry), handleErr))
	app.Use(recover.New())
	app.Use(cors.New(cors.Config{
		AllowOrigins:  strings.Join(opts.CORSAllowedOrigins, ","),
		AllowMethods:  "GET,HEAD,POST,PUT,DELETE,OPTIONS",
		AllowHeaders:  "Content-Type,Authorization,If-None-Match",
		ExposeHeaders: "ETag,Link,Location",
		MaxAge:        600,
	}))
	app.Use(withTimeout)
	app.Use(refuseContentEncoding)
	routes(app, log, store, opts.Registry)
	return app
}

// withTimeout gives every request a context with a deadline; handlers pass it on.
func withTimeout(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), requestTimeout)
	defer cancel()
	c.SetUserContext(ctx)
	return c.Next()
}

// refuseContentEncoding answers 415 to a compressed body: fiber inflates it without a bound
// when the body is read, so a one-megabyte gzip bomb would get past BodyLimit and take
// gigabytes of memory.
func refuseContentEncoding(c *fiber.Ctx) error {
	if enc := strings.TrimSpace(c.Get(fiber.HeaderContentEncoding)); enc != "" && !strings.EqualFold(enc, "identity") {
		return fiber.NewError(fiber.StatusUnsupportedMediaType, "send the body uncompressed, without Content-Encoding")
	}
	return c.Next()
}

// observe is the outermost middleware: it renders any error as problem+json here, so that the
// metrics see the status the client sees, then counts the request.
func observe(log *slog.Logger, m *httpMetrics, handleErr fiber.ErrorHandler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		start := time.Now()
		c.Locals(metricsKey{}, m)
		if err := c.Next(); err != nil {
			if herr := handleErr(c, err); herr != nil {
				return errors.Join(err, herr)
			}
		}
		route := "unmatched"
		if r := c.Route(); r != nil && r.Path != "/" {
			route = r.Path
		}
		status, took := c.Response().StatusCode(), time.Since(start)
		// The method string aliases fasthttp's buffer, which the next request on this
		// connection overwrites; the metric keeps its labels, so it gets a copy.
		size := 0
		if !c.Response().IsBodyStream() {
			// A streamed list counts its own bytes (streamMeter): Body would read the whole
			// stream into memory here, which is what streaming avoids.
			size = len(c.Response().Body())
		}
		m.observe(strings.Clone(c.Method()), route, status, size, took)
		if log.Enabled(c.UserContext(), slog.LevelDebug) {
			log.DebugContext(c.UserContext(), "request", "method", c.Method(), "path", c.Path(), "status", status, "took", took)
		}
		return nil
	}
}

func health(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

func ready(store *postgres.Store) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
		defer cancel()
		if err := store.Ping(ctx); err != nil {
			return fiber.NewError(fiber.StatusServiceUnavailable, "database is not answering")
		}
		return c.JSON(fiber.Map{"status": "ready"})
	}
}
