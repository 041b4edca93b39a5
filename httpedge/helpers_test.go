package httpedge_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"conferencego/httpedge"
)

// errGone stands for a service's domain error, which only its Translate knows.
var errGone = errors.New("gone")

func translateGone(err error) *httpedge.Problem {
	if errors.Is(err, errGone) {
		return httpedge.NewProblem(http.StatusGone, "the cursor is too old")
	}
	return nil
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newApp returns an app with the edge as the services configure it and a fresh registry.
func newApp(tb testing.TB) (*fiber.App, *prometheus.Registry) {
	tb.Helper()
	reg := prometheus.NewRegistry()
	app := httpedge.NewApp(discard(), httpedge.Config{
		AppName:            "edge-test",
		BodyLimit:          1 << 20,
		Translate:          translateGone,
		Registry:           reg,
		CORSAllowedOrigins: []string{"http://localhost:3000"},
		CORSAllowHeaders:   []string{"Content-Type", "If-None-Match"},
		CORSExposeHeaders:  []string{"ETag", "Location"},
	})
	return app, reg
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// send runs req through app in process; headers are name, value pairs.
func send(tb testing.TB, app *fiber.App, method, path, body string, headers ...string) response {
	tb.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := app.Test(req, -1)
	var data []byte
	if err == nil {
		data, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// problemOf decodes r as a problem+json answer, failing unless it is one with status want.
func problemOf(tb testing.TB, r response, want int) httpedge.Problem {
	tb.Helper()
	if r.status != want {
		tb.Errorf("status %d, want %d: %s", r.status, want, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		tb.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p httpedge.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		tb.Fatalf("problem body %q: %v", r.body, err)
	}
	return p
}
