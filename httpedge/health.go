package httpedge

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
)

// readyTimeout bounds how long /readyz waits for its dependencies together.
const readyTimeout = 2 * time.Second

// Check is a dependency that /readyz asks.
type Check struct {
	// Name is what the 503 says is not answering: "database", "redis".
	Name string
	Ping func(ctx context.Context) error
}

// Health answers /healthz: the process is up and serving.
func Health(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

// Ready answers /readyz: 200 when every check answers within readyTimeout, else 503 naming
// the first that did not.
func Ready(checks ...Check) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), readyTimeout)
		defer cancel()
		for _, check := range checks {
			if err := check.Ping(ctx); err != nil {
				return fiber.NewError(fiber.StatusServiceUnavailable, check.Name+" is not answering")
			}
		}
		return c.JSON(fiber.Map{"status": "ready"})
	}
}
