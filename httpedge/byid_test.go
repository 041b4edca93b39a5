package httpedge_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/gofiber/fiber/v2"

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

func TestUpdateByID(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t)
	var stored []string // what update was called with, to show a refused request reaches no store
	decode := func(c *fiber.Ctx) (string, error) {
		if len(c.Body()) == 0 {
			return "", httpedge.FieldErrors{{Field: "name", Message: "is required"}}
		}
		return string(c.Body()), nil
	}
	update := func(_ context.Context, id int64, name string) (string, error) {
		if id != 7 {
			return "", fmt.Errorf("thing %d: %w", id, errGone)
		}
		stored = append(stored, name)
		return name, nil
	}
	app.Put("/things/:id/", httpedge.UpdateByID("thing", decode, update, func(s string) any { return map[string]string{"name": s} }))
	if r := send(t, app, "PUT", "/things/7/", "new"); r.status != 200 || string(r.body) != `{"name":"new"}` {
		t.Errorf("PUT /things/7/ = %d %s; want the updated thing as JSON", r.status, r.body)
	}
	if r := send(t, app, "PUT", "/things/7/", ""); r.status != 400 {
		t.Errorf("PUT /things/7/ without a body = %d; want decode's 400", r.status)
	}
	if r := send(t, app, "PUT", "/things/x/", ""); r.status != 404 {
		t.Errorf("PUT /things/x/ = %d; want 404 before the body is looked at", r.status)
	}
	if r := send(t, app, "PUT", "/things/8/", "new"); r.status != 410 {
		t.Errorf("PUT /things/8/ = %d; want update's error through the app's Translate (410)", r.status)
	}
	if len(stored) != 1 || stored[0] != "new" {
		t.Errorf("update stored %q; want only the one accepted request", stored)
	}
}

func TestDeleteByID(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t)
	var deleted []int64
	del := func(_ context.Context, id int64) error {
		if id != 7 {
			return fmt.Errorf("thing %d: %w", id, errGone)
		}
		deleted = append(deleted, id)
		return nil
	}
	app.Delete("/things/:id/", httpedge.DeleteByID("thing", del))
	if r := send(t, app, "DELETE", "/things/7/", ""); r.status != 200 || string(r.body) != `{"deleted":true}` {
		t.Errorf("DELETE /things/7/ = %d %s; want {\"deleted\":true}", r.status, r.body)
	}
	if r := send(t, app, "DELETE", "/things/8/", ""); r.status != 410 {
		t.Errorf("DELETE /things/8/ = %d; want del's error through the app's Translate (410)", r.status)
	}
	if r := send(t, app, "DELETE", "/things/0/", ""); r.status != 404 {
		t.Errorf("DELETE /things/0/ = %d; want 404 for an id no thing can have", r.status)
	}
	if len(deleted) != 1 {
		t.Errorf("del called for %v; want only thing 7", deleted)
	}
}

func TestCreated(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t)
	app.Post("/things/", func(c *fiber.Ctx) error { return httpedge.Created(c, "/things/7/", map[string]int{"id": 7}) })
	r := send(t, app, "POST", "/things/", "")
	if r.status != 201 || r.header.Get("Location") != "/things/7/" || string(r.body) != `{"id":7}` {
		t.Errorf("POST /things/ = %d, Location %q, %s; want 201, /things/7/ and the thing", r.status, r.header.Get("Location"), r.body)
	}
}
