package httpedge

import (
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Operations adds the routes every service answers for the people and tools that run it:
// /healthz (the process is up), /readyz (each check passes), /metrics (reg in Prometheus's
// text format), /openapi.json and /docs (the service's OpenAPI document and its page).
func Operations(app fiber.Router, reg *prometheus.Registry, openAPI []byte, checks ...Check) {
	app.Get("/healthz", Health)
	app.Get("/readyz", Ready(checks...))
	app.Get("/metrics", Metrics(reg))
	app.Get("/openapi.json", OpenAPI(openAPI))
	app.Get("/docs", Docs(openAPI))
}
