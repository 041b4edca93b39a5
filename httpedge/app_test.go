package httpedge_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"conferencego/httpedge"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t)
	app.Post("/things", func(c *fiber.Ctx) error { return c.SendStatus(201) })
	app.Get("/things", func(c *fiber.Ctx) error { return c.SendString("[]") })
	r := send(t, app, "OPTIONS", "/things", "",
		"Origin", "http://localhost:3000", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type")
	if r.status != 204 {
		t.Errorf("preflight status %d", r.status)
	}
	for name, want := range map[string]string{
		"Access-Control-Allow-Origin":  "http://localhost:3000",
		"Access-Control-Allow-Methods": "POST",
		"Access-Control-Allow-Headers": "If-None-Match",
		"Access-Control-Max-Age":       "600",
	} {
		if got := r.header.Get(name); !strings.Contains(got, want) {
			t.Errorf("preflight %s = %q, want it to hold %q", name, got, want)
		}
	}
	r = send(t, app, "GET", "/things", "", "Origin", "http://localhost:3000")
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "http://localhost:3000" {
		t.Errorf("simple request: Access-Control-Allow-Origin = %q", got)
	}
	if got := r.header.Get("Access-Control-Expose-Headers"); !strings.Contains(got, "ETag") {
		t.Errorf("simple request: Access-Control-Expose-Headers = %q", got)
	}
	r = send(t, app, "OPTIONS", "/things", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("foreign origin allowed: %q", got)
	}
}

// A compressed body is refused before anything reads it: fiber would inflate it unbounded.
func TestCompressedBodiesAreRefused(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t)
	read := false
	app.Post("/things", func(c *fiber.Ctx) error {
		read = true
		return c.SendStatus(201)
	})
	for _, enc := range []string{"gzip", "deflate", "br", "GZIP", " gzip "} {
		problemOf(t, send(t, app, "POST", "/things", "not really gzip", "Content-Type", "application/json", "Content-Encoding", enc), 415)
	}
	if read {
		t.Error("a handler saw a compressed body")
	}
	for _, enc := range []string{"", "identity", "Identity"} {
		if r := send(t, app, "POST", "/things", "{}", "Content-Type", "application/json", "Content-Encoding", enc); r.status != 201 {
			t.Errorf("Content-Encoding %q: status %d", enc, r.status)
		}
	}
}

func TestEveryRequestHasADeadline(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t)
	app.Get("/deadline", func(c *fiber.Ctx) error {
		deadline, ok := c.UserContext().Deadline()
		if !ok || time.Until(deadline) > httpedge.RequestTimeout || time.Until(deadline) < httpedge.RequestTimeout-time.Second {
			return errors.New("no request deadline")
		}
		return c.SendStatus(204)
	})
	if r := send(t, app, "GET", "/deadline", ""); r.status != 204 {
		t.Errorf("status %d: %s", r.status, r.body)
	}
}

func TestLimitBody(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t)
	app.Post("/small", httpedge.LimitBody(8), func(c *fiber.Ctx) error { return c.SendStatus(201) })
	if r := send(t, app, "POST", "/small", "12345678"); r.status != 201 {
		t.Errorf("a body at the limit: status %d", r.status)
	}
	problemOf(t, send(t, app, "POST", "/small", "123456789"), 413)
}

func TestPanicIs500(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t)
	app.Get("/panic", func(*fiber.Ctx) error { panic("boom") })
	p := problemOf(t, send(t, app, "GET", "/panic", ""), 500)
	if strings.Contains(p.Detail, "boom") {
		t.Errorf("the client sees the panic: %q", p.Detail)
	}
}

// The metric names are what the dashboards and the comparison read; they must not change.
func TestMetrics(t *testing.T) {
	t.Parallel()
	app, reg := newApp(t)
	app.Get("/things/:id", func(c *fiber.Ctx) error { return c.SendString("thing") })
	app.Get("/metrics", httpedge.Metrics(reg))
	send(t, app, "GET", "/things/1", "")
	send(t, app, "GET", "/things/2", "")
	send(t, app, "DELETE", "/nowhere", "")
	r := send(t, app, "GET", "/metrics", "")
	if r.status != 200 {
		t.Fatalf("/metrics: %d", r.status)
	}
	for _, want := range []string{
		`http_requests_total{method="GET",route="/things/:id",status="200"} 2`,
		`http_requests_total{method="DELETE",route="unmatched",status="404"} 1`,
		`http_response_body_bytes_total{method="GET",route="/things/:id"} 10`,
		`http_request_duration_seconds_bucket{method="GET",route="/things/:id",le="0.0005"}`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %q:\n%s", want, r.body)
		}
	}
}

func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	down := errors.New("connection refused")
	var asked []string
	check := func(name string, err error) httpedge.Check {
		return httpedge.Check{Name: name, Ping: func(ctx context.Context) error {
			asked = append(asked, name)
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("no deadline")
			}
			return err
		}}
	}
	app, _ := newApp(t)
	app.Get("/healthz", httpedge.Health)
	app.Get("/ready", httpedge.Ready(check("database", nil), check("redis", nil)))
	app.Get("/notready", httpedge.Ready(check("database", nil), check("redis", down), check("never", nil)))
	app.Get("/nothing", httpedge.Ready())
	if r := send(t, app, "GET", "/healthz", ""); r.status != 200 || !strings.Contains(string(r.body), `"ok"`) {
		t.Errorf("/healthz: %d %s", r.status, r.body)
	}
	if r := send(t, app, "GET", "/ready", ""); r.status != 200 || !strings.Contains(string(r.body), `"ready"`) {
		t.Errorf("/ready: %d %s", r.status, r.body)
	}
	asked = nil
	r := send(t, app, "GET", "/notready", "")
	p := problemOf(t, r, http.StatusServiceUnavailable)
	if p.Detail != "redis is not answering" || r.header.Get("Retry-After") != "1" {
		t.Errorf("/notready: %+v, Retry-After %q", p, r.header.Get("Retry-After"))
	}
	if strings.Join(asked, ",") != "database,redis" {
		t.Errorf("asked %v, want database then redis and no further", asked)
	}
	if r := send(t, app, "GET", "/nothing", ""); r.status != 200 {
		t.Errorf("no checks: %d", r.status)
	}
}
