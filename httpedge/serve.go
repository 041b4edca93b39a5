package httpedge

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Serve listens on addr and serves app until ctx is done (the process's SIGTERM), then shuts
// app down, giving requests in flight up to timeout to finish. Errors name HTTP_ADDR, the
// variable every service reads addr from, so that a process that cannot listen says what to
// fix on one line. Connections close with a lingering close (Lingering).
func Serve(ctx context.Context, log *slog.Logger, app *fiber.App, addr string, timeout time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- app.Listener(Lingering(ln)) }()
	log.Info(app.Config().AppName+" is serving", "addr", ln.Addr().String())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", timeout.String())
	if err := app.ShutdownWithTimeout(timeout); err != nil {
		return fmt.Errorf("shut down http server: %w", err)
	}
	return nil
}
