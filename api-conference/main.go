// Command api-conference serves the conference context: states, locations, conferences and
// presentations, with a transactional outbox of every conference change for the syncer.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/uptrace/bun"

	"conferencego/api-conference/internal/postgres"
	"conferencego/api-conference/internal/server"
	"conferencego/httpedge"
)

// shutdownTimeout bounds how long in-flight requests may take to finish on SIGTERM.
const shutdownTimeout = 10 * time.Second

// pruneInterval is how often old outbox rows and tombstones are looked for.
const pruneInterval = time.Minute

// connectTimeout bounds how long start-up waits for the database before giving up.
const connectTimeout = 15 * time.Second

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "api-conference:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 1 {
		return fmt.Errorf("takes no arguments (got %q); it is configured by environment variables", args[1:])
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := loadConfig(getenv, isTerminal(stdout))
	if err != nil {
		return err
	}
	log := newLogger(stdout, cfg)
	log.Info("starting api-conference",
		"http_addr", cfg.HTTPAddr, "database_url", redactURL(cfg.DatabaseURL), "schema", postgres.Schema,
		"cors_allowed_origins", cfg.CORSAllowedOrigins, "outbox_retention", cfg.OutboxRetention.String(),
		"tombstone_retention", cfg.TombstoneRetention.String(),
		"log_level", cfg.LogLevel.String(), "log_format", cfg.LogFormat)

	db, err := connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db, postgres.Schema); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(db.DB, "conference"),
	)
	app := server.New(log, postgres.NewStore(db), server.Options{
		CORSAllowedOrigins: cfg.CORSAllowedOrigins,
		Registry:           reg,
	})

	pruneCtx, stopPruning := context.WithCancel(ctx)
	defer stopPruning()
	if cfg.OutboxRetention > 0 || cfg.TombstoneRetention > 0 {
		go postgres.Pruner{
			Store: postgres.NewStore(db), Log: log, Retention: cfg.OutboxRetention,
			TombstoneRetention: cfg.TombstoneRetention, Interval: pruneInterval,
		}.Run(pruneCtx)
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- app.Listener(httpedge.Lingering(ln)) }()
	log.Info("api-conference is serving", "addr", ln.Addr().String())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", shutdownTimeout)
	if err := app.ShutdownWithTimeout(shutdownTimeout); err != nil {
		return fmt.Errorf("shut down http server: %w", err)
	}
	log.Info("stopped")
	return nil
}

// connect opens the database, retrying for a while so that a database that is still starting
// does not fail the service, and naming the variable when it gives up.
func connect(ctx context.Context, dsn string) (*bun.DB, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	wait := 100 * time.Millisecond
	for {
		db, err := postgres.Open(ctx, dsn, postgres.Schema)
		if err == nil {
			return db, nil
		}
		// The server answered and said no (no such database, bad password): waiting won't help.
		// 57P03 is "the database system is starting up", which will.
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code != "57P03" {
			return nil, fmt.Errorf("DATABASE_URL: %w", err)
		}
		select {
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), context.Canceled) {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("DATABASE_URL: cannot reach the database within %s: %w", connectTimeout, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}
