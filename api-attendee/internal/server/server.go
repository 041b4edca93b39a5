// Package server is api-attendee's HTTP layer: fiber routes, JSON shapes, the mapping of the
// domain's errors to problem+json, and the token-protected internal endpoint through which
// pull mode hands over conference changes. The edge it shares with api-conference (decoding,
// middleware, health and metrics) is httpedge. It converts between JSON and the attendee
// package's types and leaves every rule to the domain and the store.
package server

import (
	"cmp"
	"log/slog"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"conferencego/api-attendee/internal/postgres"
	"conferencego/httpedge"
)

// BodyLimit is the largest request body the public API accepts; larger ones get 413.
const BodyLimit = 1 << 20

// InternalBodyLimit is the largest body of the internal endpoint: the syncer hands changes
// in chunks of 500 and the longest change is about 20 KiB, so 16 MiB leaves room to spare.
const InternalBodyLimit = 16 << 20

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
	ReadyChecks []httpedge.Check
	// SyncMode (push or pull) is what GET /status says the copy is kept in step by.
	SyncMode string
}

// New returns the app serving every route of api-attendee.
func New(log *slog.Logger, store *postgres.Store, opts Options) *fiber.App {
	opts.Registry = cmp.Or(opts.Registry, prometheus.NewRegistry())
	app := httpedge.NewApp(log, httpedge.Config{
		AppName: "api-attendee", Translate: toProblem, Registry: opts.Registry,
		// The server reads bodies up to the internal endpoint's limit; the public routes
		// refuse anything over BodyLimit themselves (httpedge.LimitBody).
		BodyLimit:          InternalBodyLimit,
		CORSAllowedOrigins: opts.CORSAllowedOrigins,
		CORSAllowHeaders:   []string{"Content-Type", "Authorization"},
		CORSExposeHeaders:  []string{"Location"},
	})
	checks := append([]httpedge.Check{{Name: "database", Ping: store.Ping}}, opts.ReadyChecks...)
	routes(app, log, store, opts, checks)
	return app
}
