// Command api-conference serves the conference context: states, locations, conferences and
// presentations, with a transactional outbox of every conference change for the syncer.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"

	"conferencego/api-conference/internal/postgres"
	"conferencego/api-conference/internal/server"
	"conferencego/httpedge"
	"conferencego/pgschema"
	"conferencego/service/process"
)

// shutdownTimeout bounds how long in-flight requests may take to finish on SIGTERM.
const shutdownTimeout = 10 * time.Second

// pruneInterval is how often old outbox rows and tombstones are looked for.
const pruneInterval = time.Minute

// connectTimeout bounds how long start-up waits for the database before giving up.
const connectTimeout = 15 * time.Second

func main() { process.Main("api-conference", run) }

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return process.Run(ctx, args, getenv, stdout, loadConfig, serve)
}

// serve migrates the conference schema, prunes the outbox and the tombstones in the
// background when they are kept for a while, and serves the API until ctx ends.
func serve(ctx context.Context, cfg config, log *slog.Logger) error {
	log.Info("starting api-conference",
		"http_addr", cfg.HTTPAddr, "database_url", redactURL(cfg.DatabaseURL), "schema", postgres.Schema,
		"cors_allowed_origins", cfg.CORSAllowedOrigins, "outbox_retention", cfg.OutboxRetention.String(),
		"tombstone_retention", cfg.TombstoneRetention.String(), "outbox_notify", cfg.OutboxNotify,
		"outbox_transport", cfg.OutboxTransport,
		"log_level", cfg.LogLevel.String(), "log_format", cfg.LogFormat)
	db, err := pgschema.Connect(ctx, cfg.DatabaseURL, postgres.Schema, connectTimeout, postgres.Migrate)
	if err != nil {
		return err
	}
	defer db.Close()
	// The notifier outlives the server: a write answered during shutdown still notifies.
	notifyCtx, stopNotifying := context.WithCancel(context.WithoutCancel(ctx))
	defer stopNotifying()
	notifier := postgres.NewNotifier(db, log)
	if cfg.OutboxNotify == postgres.NotifyAfter {
		go notifier.Run(notifyCtx)
	}
	store, err := postgres.NewStore(db).WithNotify(cfg.OutboxNotify, notifier)
	if err != nil {
		return err
	}
	if cfg.OutboxTransport == postgres.TransportLogical {
		if store, err = store.WithLogical(ctx, cfg.OutboxSlot); err != nil {
			return fmt.Errorf("OUTBOX_TRANSPORT=logical: %w", err)
		}
		log.Info("conference changes go to the write-ahead log as logical-decoding messages", "slot", cfg.OutboxSlot)
	}
	app := server.New(log, store, server.Options{
		CORSAllowedOrigins: cfg.CORSAllowedOrigins,
		Registry:           process.NewRegistry(collectors.NewDBStatsCollector(db.DB, "conference")),
	})

	pruneCtx, stopPruning := context.WithCancel(ctx)
	defer stopPruning()
	if cfg.OutboxRetention > 0 || cfg.TombstoneRetention > 0 {
		go postgres.Pruner{
			Store: postgres.NewStore(db), Log: log, Retention: cfg.OutboxRetention,
			TombstoneRetention: cfg.TombstoneRetention, Interval: pruneInterval,
		}.Run(pruneCtx)
	}

	if err := httpedge.Serve(ctx, log, app, cfg.HTTPAddr, shutdownTimeout); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
