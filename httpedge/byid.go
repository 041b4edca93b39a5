package httpedge

import (
	"context"

	"github.com/gofiber/fiber/v2"
)

// The handlers of one resource by the path's :id. In each, an id no resource can have is 404
// (IDParam, naming what) before anything else is read, and the store's error goes to the
// app's error handler, which maps it to its status. They are the one place where "parse the
// id, call the store, answer" is written, for both services.

// ByID is the handler of a GET of one resource, or of an action on it that takes no body: a
// found value is answered as the JSON that body makes of it.
func ByID[T any](what string, get func(ctx context.Context, id int64) (T, error), body func(T) any) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := IDParam(c, "id", what)
		if err != nil {
			return err
		}
		v, err := get(c.UserContext(), id)
		if err != nil {
			return err
		}
		return c.JSON(body(v))
	}
}

// UpdateByID is the handler of a PUT of one resource: the id is checked before the body, so
// an unknown path is 404 whatever was sent; decode's error (a 400 naming the fields) stops
// the request before the store sees it.
func UpdateByID[P, T any](what string, decode func(*fiber.Ctx) (P, error), update func(ctx context.Context, id int64, p P) (T, error), body func(T) any) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := IDParam(c, "id", what)
		if err != nil {
			return err
		}
		p, err := decode(c)
		if err != nil {
			return err
		}
		v, err := update(c.UserContext(), id, p)
		if err != nil {
			return err
		}
		return c.JSON(body(v))
	}
}

// DeleteByID is the handler of a DELETE of one resource; it answers {"deleted": true}, as the
// original project's clients expect.
func DeleteByID(what string, del func(ctx context.Context, id int64) error) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := IDParam(c, "id", what)
		if err != nil {
			return err
		}
		if err := del(c.UserContext(), id); err != nil {
			return err
		}
		return c.JSON(fiber.Map{"deleted": true})
	}
}

// Created answers 201 with body and, in Location, the path of the resource just made: what
// every create of both services answers.
func Created(c *fiber.Ctx, href string, body any) error {
	c.Location(href)
	return c.Status(fiber.StatusCreated).JSON(body)
}
