// Command web serves the page that shows the system at work, on :3000 as the original
// Conference GO served its front-end: api-conference's conferences and locations, api-attendee's
// copy of them and registration, and the syncer's figures between the two. The page calls the
// services directly from the browser (their CORS allows http://localhost:3000), so this program
// only serves files and tells the page where the services are.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"conferencego/service/process"
)

// shutdownTimeout bounds how long open requests may take to finish on SIGTERM.
const shutdownTimeout = 5 * time.Second

func main() { process.Main("web", run) }

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return process.Run(ctx, args, getenv, stdout, loadConfig, serve)
}

// serve serves the page until ctx ends.
func serve(ctx context.Context, cfg config, log *slog.Logger) error {
	log.Info("starting web", "http_addr", cfg.HTTPAddr, "conference_url", cfg.ConferenceURL,
		"attendee_url", cfg.AttendeeURL, "syncer_url", cfg.SyncerURL, "log_level", cfg.LogLevel.String())

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	srv := &http.Server{Handler: newHandler(log, cfg), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("web is serving", "addr", ln.Addr().String(), "page", "http://localhost:"+port(ln.Addr()))

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("serve http: %w", err)
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down http server: %w", err)
	}
	log.Info("stopped")
	return nil
}

func port(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return fmt.Sprint(t.Port)
	}
	return a.String()
}
