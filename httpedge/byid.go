package httpedge

import (
	"context"

	"github.com/gofiber/fiber/v2"
)

// ByID is the handler of a GET of one resource by the path's :id: an id no resource can have
// is 404 (IDParam, naming what), get's error goes to the app's error handler, and a found
// value is answered as the JSON that body makes of it.
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
