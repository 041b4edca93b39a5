// Package server is api-conference's HTTP layer: fiber routes, JSON shapes and the mapping of
// the domain's errors to problem+json. The edge it shares with api-attendee (decoding,
// middleware, health and metrics) is httpedge. It converts between JSON and the conference
// package's types and leaves every rule to the domain and the store.
package server

import (
	"cmp"
	"log/slog"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"conferencego/api-conference/internal/postgres"
	"conferencego/httpedge"
)

// BodyLimit is the largest request body accepted; larger ones get 413.
const BodyLimit = 1 << 20

// Options are the settings of the HTTP layer.
type Options struct {
	// CORSAllowedOrigins are the origins whose pages may call the API ("*" allows any).
	CORSAllowedOrigins []string
	// Registry receives the HTTP metrics; /metrics serves it. Nil means a new one.
	Registry *prometheus.Registry
}

// New returns the app serving every route of api-conference.
func New(log *slog.Logger, store *postgres.Store, opts Options) *fiber.App {
	reg := cmp.Or(opts.Registry, prometheus.NewRegistry())
	app := httpedge.NewApp(log, httpedge.Config{
		AppName: "api-conference", BodyLimit: BodyLimit, Translate: toProblem, Registry: reg,
		// If-None-Match and ETag for the conference list's conditional GET, Link for its pages.
		CORSAllowedOrigins: opts.CORSAllowedOrigins, CORSAllowHeaders: []string{"Content-Type", "Authorization", "If-None-Match"},
		CORSExposeHeaders: []string{"ETag", "Link", "Location"},
	})
	routes(app, log, store, reg)
	return app
}
