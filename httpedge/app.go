package httpedge

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
)

// RequestTimeout bounds the work of one request, so a stuck query cannot hold a connection.
const RequestTimeout = 15 * time.Second

// Config is what differs between the services at their edge.
type Config struct {
	// AppName names the service in fiber's headers and errors.
	AppName string
	// BodyLimit is the largest body the server reads; a larger one gets 413.
	BodyLimit int
	// Translate maps the service's domain errors to their problems.
	Translate Translate
	// Registry receives the HTTP metrics. It must not be nil.
	Registry prometheus.Registerer
	// CORSAllowedOrigins are the origins whose pages may call the API ("*" allows any).
	CORSAllowedOrigins []string
	// CORSAllowHeaders and CORSExposeHeaders are the request and response headers those
	// pages may send and read, beyond the CORS-safelisted ones.
	CORSAllowHeaders, CORSExposeHeaders []string
}

// NewApp returns a fiber app with the edge every request of either service passes, outermost
// first: metrics (with errors rendered as problem+json), recovery from panics, CORS, the
// request deadline and the refusal of compressed bodies. The service adds its routes.
func NewApp(log *slog.Logger, cfg Config) *fiber.App {
	handleErr := ErrorHandler(log, cfg.Translate)
	app := fiber.New(fiber.Config{
		AppName:               cfg.AppName,
		ErrorHandler:          handleErr,
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           2 * time.Minute,
		DisableStartupMessage: true,
	})
	app.Use(observe(log, newHTTPMetrics(cfg.Registry), handleErr))
	app.Use(recover.New())
	app.Use(cors.New(cors.Config{
		AllowOrigins:  strings.Join(cfg.CORSAllowedOrigins, ","),
		AllowMethods:  "GET,HEAD,POST,PUT,DELETE,OPTIONS",
		AllowHeaders:  strings.Join(cfg.CORSAllowHeaders, ","),
		ExposeHeaders: strings.Join(cfg.CORSExposeHeaders, ","),
		MaxAge:        600,
	}))
	app.Use(withTimeout(RequestTimeout))
	app.Use(refuseContentEncoding)
	return app
}

// withTimeout gives every request a context with a deadline; handlers pass it on.
func withTimeout(d time.Duration) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), d)
		defer cancel()
		c.SetUserContext(ctx)
		return c.Next()
	}
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

// LimitBody refuses bodies over limit with 413: for a group of routes that takes less than
// the server's BodyLimit.
func LimitBody(limit int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if len(c.Body()) > limit {
			return fiber.ErrRequestEntityTooLarge
		}
		return c.Next()
	}
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
