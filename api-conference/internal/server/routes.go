package server

import (
	_ "embed"
	"log/slog"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"conferencego/api-conference/internal/postgres"
	"conferencego/httpedge"
)

// openAPI is the service's OpenAPI 3.1 document. The tests check every answer against it
// and every route against its paths, so it cannot drift from the handlers.
//
//go:embed openapi.json
var openAPI []byte

// routes lists every route of the service. Paths match with and without a trailing slash.
func routes(app *fiber.App, log *slog.Logger, store *postgres.Store, reg *prometheus.Registry) {
	source := &sourceID{store: store}
	httpedge.Operations(app, reg, openAPI, httpedge.Check{Name: "database", Ping: store.Ping})

	app.Get("/api/states", handleListStates(store))

	app.Get("/api/locations", handleListLocations(log, store))
	app.Post("/api/locations", handleCreateLocation(store))
	app.Get("/api/locations/:id", handleGetLocation(store))
	app.Put("/api/locations/:id", handleUpdateLocation(store))
	app.Delete("/api/locations/:id", handleDeleteLocation(store))

	app.Get("/api/conferences", handleListConferences(log, store))
	app.Post("/api/conferences", handleCreateConference(store))
	// Before /api/conferences/:id, so that these static paths win.
	app.Get("/api/conferences/changes", handleFeed(store, source))
	app.Get("/api/conferences/state", handleState(store, source))
	app.Get("/api/conferences/:id", handleGetConference(store))
	app.Put("/api/conferences/:id", handleUpdateConference(store))
	app.Delete("/api/conferences/:id", handleDeleteConference(store))

	app.Get("/api/conferences/:id/presentations", handleListPresentations(store))
	app.Post("/api/conferences/:id/presentations", handleCreatePresentation(store))
	app.Get("/api/presentations/:id", handleGetPresentation(store))
	app.Put("/api/presentations/:id", handleUpdatePresentation(store))
	app.Delete("/api/presentations/:id", handleDeletePresentation(store))
	app.Put("/api/presentations/:id/approval", handleSetStatus(store, statusApproved))
	app.Put("/api/presentations/:id/rejection", handleSetStatus(store, statusRejected))
}
