package httpedge_test

import (
	"context"
	"fmt"
	"testing"

	"conferencego/httpedge"
)

func TestByID(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t)
	get := func(_ context.Context, id int64) (string, error) {
		if id != 7 {
			return "", fmt.Errorf("thing %d: %w", id, errGone)
		}
		return "seven", nil
	}
	app.Get("/things/:id/", httpedge.ByID("thing", get, func(s string) any { return map[string]string{"name": s} }))
	if r := send(t, app, "GET", "/things/7/", ""); r.status != 200 || string(r.body) != `{"name":"seven"}` {
		t.Errorf("GET /things/7/ = %d %s; want the thing as JSON", r.status, r.body)
	}
	if r := send(t, app, "GET", "/things/8/", ""); r.status != 410 {
		t.Errorf("GET /things/8/ = %d; want get's error through the app's Translate (410)", r.status)
	}
	if r := send(t, app, "GET", "/things/x/", ""); r.status != 404 {
		t.Errorf("GET /things/x/ = %d; want 404 for an id no thing can have", r.status)
	}
}
