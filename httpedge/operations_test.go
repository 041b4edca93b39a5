package httpedge_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"conferencego/httpedge"
)

func TestOperations(t *testing.T) {
	t.Parallel()
	app, reg := newApp(t)
	doc := []byte(`{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{}}`)
	down := httpedge.Check{Name: "database", Ping: func(context.Context) error { return errors.New("refused") }}
	httpedge.Operations(app, reg, doc, down)
	// In this order: /metrics comes after requests it has counted.
	for _, want := range []struct {
		path   string
		status int
		body   string
	}{
		{"/healthz", 200, ""},
		{"/readyz", 503, "database"}, // the check is asked, and named when it fails
		{"/openapi.json", 200, `"openapi":"3.1.0"`},
		{"/docs", 200, "<html"},
		{"/metrics", 200, `http_requests_total{method="GET",route="/healthz",status="200"} 1`},
	} {
		path := want.path
		r := send(t, app, "GET", path, "")
		if r.status != want.status || !strings.Contains(strings.ToLower(string(r.body)), strings.ToLower(want.body)) {
			t.Errorf("GET %s = %d %.200s; want %d containing %q", path, r.status, r.body, want.status, want.body)
		}
	}
}
