package server

import (
	_ "embed"
	"log/slog"

	"github.com/gofiber/fiber/v2"

	"conferencego/api-attendee/internal/postgres"
	"conferencego/httpedge"
)

// openAPI is the service's OpenAPI 3.1 document. The tests check every answer against it
// and every route against its paths, so it cannot drift from the handlers.
//
//go:embed openapi.json
var openAPI []byte

// routes lists every route of the service. Paths match with and without a trailing slash.
func routes(app *fiber.App, log *slog.Logger, store *postgres.Store, opts Options, checks []httpedge.Check) {
	httpedge.Operations(app, opts.Registry, openAPI, checks...)
	app.Get("/status", handleStatus(opts.SyncMode, opts.Registry))

	api := app.Group("/api", httpedge.LimitBody(BodyLimit))
	api.Get("/conferences", handleListConferences(log, store))
	api.Get("/conference-vos", handleListNewestConferenceVOs(store))
	api.Get("/conferences/:id", handleGetConference(store))
	api.Get("/conferences/:id/attendees", handleListConferenceAttendees(log, store))
	api.Post("/conferences/:id/attendees", handleRegisterForConference(store))

	api.Get("/attendees", handleListAttendees(log, store))
	api.Post("/attendees", handleRegister(store))
	api.Get("/attendees/:id", handleGetAttendee(store))
	api.Put("/attendees/:id", handleUpdateAttendee(store))
	api.Delete("/attendees/:id", handleDeleteAttendee(store))
	api.Post("/attendees/:id/badge", handleCreateBadge(store))

	lag := newLagHistogram(opts.Registry)
	internal := app.Group("/internal", requireToken(opts.SyncToken))
	internal.Get("/conferences", handleListConferenceVOsWithTombstones(store))
	internal.Post("/changes", handleApplyChanges(store, lag))
	internal.Post("/repairs", handleRepairs(store))
	internal.Get("/source", handleGetSource(store))
	internal.Delete("/source", handleForgetSource(store, log))
}
