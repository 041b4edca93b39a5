// Command api-attendee serves the attendee context: the local copy of conferences
// (ConferenceVO), attendees and badges. In push mode it also consumes the conference change
// stream; in pull mode the syncer hands changes over through its internal endpoint.
package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"

	"conferencego/api-attendee/internal/postgres"
	"conferencego/api-attendee/internal/redisstream"
	"conferencego/api-attendee/internal/server"
	"conferencego/httpedge"
	"conferencego/pgschema"
	"conferencego/service/process"
	"conferencego/syncer/redisconn"
)

// shutdownTimeout bounds how long in-flight requests and the consumer's batch in hand may
// take to finish on SIGTERM.
const shutdownTimeout = 10 * time.Second

// connectTimeout bounds how long start-up waits for the database and Redis before giving up.
const connectTimeout = 15 * time.Second

func main() { process.Main("api-attendee", run) }

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return process.Run(ctx, args, getenv, stdout, loadConfig, serve)
}

// serve migrates the attendee schema, consumes the change stream in push mode, and serves the
// API until ctx ends; then the consumer finishes the batch in hand.
func serve(ctx context.Context, cfg config, log *slog.Logger) error {
	logStart(log, cfg)
	db, err := pgschema.Connect(ctx, cfg.DatabaseURL, postgres.Schema, connectTimeout, postgres.Migrate)
	if err != nil {
		return err
	}
	defer db.Close()
	store := postgres.NewStore(db)
	reg := process.NewRegistry(collectors.NewDBStatsCollector(db.DB, "attendee"))
	opts := server.Options{CORSAllowedOrigins: cfg.CORSAllowedOrigins, Registry: reg, SyncToken: cfg.SyncToken, SyncMode: cfg.SyncMode}

	var consumer *redisstream.Consumer
	if cfg.SyncMode == "push" {
		rdb, err := redisconn.Open(ctx, cfg.redis())
		if err != nil {
			return err
		}
		defer rdb.Close()
		consumer, err = redisstream.New(rdb, store, redisstream.Config{
			Stream: cfg.Stream, Group: cfg.Group, BatchSize: cfg.BatchSize,
			ClaimMinIdle: cfg.ClaimMinIdle, MaxDeliveries: cfg.MaxDeliveries,
			Logger: log, Registerer: reg,
		})
		if err != nil {
			return err
		}
		opts.ReadyChecks = append(opts.ReadyChecks, httpedge.Check{
			Name: "redis", Ping: func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
		})
	}
	app := server.New(log, store, opts)

	// The consumer stops on its own context, so it can be told to stop when serving fails too.
	consumeCtx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	consumed := make(chan struct{})
	if consumer != nil {
		go func() {
			defer close(consumed)
			_ = consumer.Run(consumeCtx) // returns only when told to stop
		}()
	} else {
		close(consumed)
	}

	runErr := httpedge.Serve(ctx, log, app, cfg.HTTPAddr, shutdownTimeout)
	stopConsumer()
	select {
	case <-consumed:
	case <-time.After(shutdownTimeout):
		runErr = errors.Join(runErr, errors.New("the stream consumer did not stop in time"))
	}
	if runErr != nil {
		return runErr
	}
	log.Info("stopped")
	return nil
}

// logStart logs the effective configuration, secrets masked.
func logStart(log *slog.Logger, cfg config) {
	log.Info("starting api-attendee",
		"http_addr", cfg.HTTPAddr, "database_url", redactURL(cfg.DatabaseURL), "schema", postgres.Schema,
		"sync_mode", cfg.SyncMode, "redis_url", redactURL(cfg.RedisURL), "redis_mode", cfg.RedisMode, "sync_stream", cfg.Stream,
		"sync_group", cfg.Group, "sync_batch_size", cfg.BatchSize, "sync_claim_idle", cfg.ClaimMinIdle.String(),
		"sync_max_deliveries", cfg.MaxDeliveries, "sync_token_set", cfg.SyncToken != "",
		"cors_allowed_origins", cfg.CORSAllowedOrigins, "log_level", cfg.LogLevel.String(), "log_format", cfg.LogFormat)
	if cfg.SyncToken == "" {
		log.Warn("the internal endpoint /internal/ is off: SYNC_TOKEN is not set, so every call is answered 401")
	}
}
