// Command api-attendee serves the attendee context: the local copy of conferences
// (ConferenceVO), attendees and badges. In push mode it also consumes the conference change
// stream; in pull mode the syncer hands changes over through its internal endpoint.
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

	"conferencego/api-attendee/internal/postgres"
	"conferencego/api-attendee/internal/redisstream"
	"conferencego/api-attendee/internal/server"
	"conferencego/httpedge"
	"conferencego/syncer/redisconn"
)

// shutdownTimeout bounds how long in-flight requests and the consumer's batch in hand may
// take to finish on SIGTERM.
const shutdownTimeout = 10 * time.Second

// connectTimeout bounds how long start-up waits for the database and Redis before giving up.
const connectTimeout = 15 * time.Second

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "api-attendee:", err)
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
	log.Info("starting api-attendee",
		"http_addr", cfg.HTTPAddr, "database_url", redactURL(cfg.DatabaseURL), "schema", postgres.Schema,
		"sync_mode", cfg.SyncMode, "redis_url", redactURL(cfg.RedisURL), "redis_mode", cfg.RedisMode, "sync_stream", cfg.Stream,
		"sync_group", cfg.Group, "sync_batch_size", cfg.BatchSize, "sync_claim_idle", cfg.ClaimMinIdle.String(),
		"sync_max_deliveries", cfg.MaxDeliveries, "sync_token_set", cfg.SyncToken != "",
		"cors_allowed_origins", cfg.CORSAllowedOrigins, "log_level", cfg.LogLevel.String(), "log_format", cfg.LogFormat)
	if cfg.SyncToken == "" {
		log.Warn("the internal endpoint /internal/ is off: SYNC_TOKEN is not set, so every call is answered 401")
	}

	db, err := connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db, postgres.Schema); err != nil {
		return err
	}
	store := postgres.NewStore(db)

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(db.DB, "attendee"),
	)
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

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- app.Listener(httpedge.Lingering(ln)) }()
	log.Info("api-attendee is serving", "addr", ln.Addr().String())

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

	var runErr error
	select {
	case err := <-serveErr:
		runErr = fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", shutdownTimeout.String())
	stopConsumer()
	if runErr == nil {
		if err := app.ShutdownWithTimeout(shutdownTimeout); err != nil {
			runErr = fmt.Errorf("shut down http server: %w", err)
		}
	}
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
		if !pause(ctx, wait) {
			if errors.Is(context.Cause(ctx), context.Canceled) {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("DATABASE_URL: cannot reach the database within %s: %w", connectTimeout, err)
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// pause waits for d or until ctx is done, and reports whether it waited the whole time.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
