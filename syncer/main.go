// Command syncer keeps api-attendee's ConferenceVO table in step with api-conference, in the
// mode SYNC_MODE names: push relays the conference outbox into a Redis stream that api-attendee
// consumes; pull polls the conference API and hands changes to api-attendee.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"conferencego/service/process"
	"conferencego/syncer/internal/poller"
	"conferencego/syncer/internal/reconcile"
	"conferencego/syncer/internal/relay"
	"conferencego/syncer/internal/syncapi"
	"conferencego/syncer/redisconn"
)

// conferenceSchema is where api-conference keeps its outbox.
const conferenceSchema = "conference"

const (
	connectTimeout  = 15 * time.Second
	shutdownTimeout = 10 * time.Second
)

func main() { process.Main("syncer", run) }

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return process.Run(ctx, args, getenv, stdout, loadConfig, serve)
}

// serve builds the mode's loop (buildPush or buildPull), serves /healthz, /readyz and
// /metrics, and runs the loop until ctx ends or either fails.
func serve(ctx context.Context, cfg config, log *slog.Logger) error {
	tokenState := "unset"
	if cfg.Token != "" {
		tokenState = "set"
	}
	log.Info("starting syncer", "mode", cfg.Mode, "http_addr", cfg.HTTPAddr,
		"database_url", redactURL(cfg.DatabaseURL), "redis_url", redactURL(cfg.RedisURL), "redis_mode", cfg.RedisMode, "stream", cfg.Stream,
		"stream_maxlen", cfg.StreamMaxLen, "outbox_transport", cfg.OutboxTransport, "slot", cfg.Slot, "outbox_poll", offOr(cfg.OutboxPoll), "relay_linger", offOr(cfg.RelayLinger), "wait_replicas", cfg.WaitReplicas, "wait_timeout", cfg.WaitTimeout.String(), "pull", cfg.PullMode, "poll_interval", cfg.PollInterval.String(),
		"reconcile_interval", cfg.ReconcileInterval.String(), "conference_url", redactURL(cfg.ConferenceURL),
		"attendee_url", redactURL(cfg.AttendeeURL), "sync_token", tokenState, "pprof", cfg.Pprof, "log_level", cfg.LogLevel.String())

	reg := process.NewRegistry()
	client := &http.Client{Timeout: 30 * time.Second}

	guard := reconcile.NewGuard(reg)
	build := buildPull
	if cfg.Mode == modePush {
		build = buildPush
	}
	loop, ready, closeAll, err := build(ctx, log, cfg, client, guard, reg)
	if err != nil {
		return err
	}
	defer closeAll()

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	srv := &http.Server{Handler: withStatus(routes(reg, ready, cfg.Pprof), reg, cfg.Mode, cfg.CORSOrigins), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	loopCtx, stopLoop := context.WithCancel(context.WithoutCancel(ctx))
	loopDone := make(chan error, 1)
	go func() { loopDone <- loop(loopCtx) }()
	log.Info("syncer is running", "mode", cfg.Mode, "addr", ln.Addr().String())

	var result error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		result = fmt.Errorf("serve http: %w", err)
	case err := <-loopDone:
		result = fmt.Errorf("%s loop stopped: %w", cfg.Mode, err)
		loopDone <- nil
	}
	log.Info("shutting down")
	stopLoop()
	select {
	case <-loopDone:
	case <-time.After(shutdownTimeout):
		log.Warn("the sync loop did not stop in time")
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && result == nil {
		result = fmt.Errorf("shut down http server: %w", err)
	}
	log.Info("stopped")
	return result
}

// buildPush makes the relay: the conference database, Redis, and reconcile through the two
// services' sync endpoints when SYNC_TOKEN allows it.
func buildPush(ctx context.Context, log *slog.Logger, cfg config, client *http.Client, guard *reconcile.Guard, reg prometheus.Registerer) (loop, ready func(context.Context) error, closeAll func(), err error) {
	pool, listenCfg, err := connectPostgres(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, nil, nil, err
	}
	rdb, err := redisconn.Open(ctx, cfg.redis())
	if err != nil {
		pool.Close()
		return nil, nil, nil, err
	}
	closeAll = func() { rdb.Close(); pool.Close() }
	rcfg := relay.Config{Stream: cfg.Stream, MaxLen: cfg.StreamMaxLen, ReconcileInterval: cfg.ReconcileInterval,
		WaitReplicas: cfg.WaitReplicas, WaitTimeout: cfg.WaitTimeout, Poll: cfg.OutboxPoll, Linger: cfg.RelayLinger,
		Transport: cfg.OutboxTransport, Slot: cfg.Slot, WALConnString: cfg.DatabaseURL}
	if cfg.Token != "" {
		rec, err := newReconciler(log, cfg, client)
		if err != nil {
			closeAll()
			return nil, nil, nil, err
		}
		rlog := log.With("component", "reconcile")
		vo := reconcile.NewConferenceVOs(rlog, rec, guard)
		rcfg.Reconcile = func(ctx context.Context) error {
			_, err := vo.MatchSource(ctx)
			return err
		}
		rcfg.ReconcileFailed = func(err error) {
			if !vo.NoteMismatch(err) {
				rlog.Warn("reconcile failed; retrying", "err", err)
			}
		}
	} else {
		log.Warn("SYNC_TOKEN is unset: no reconcile, so events lost by Redis (restart without persistence, flush) are not recovered")
	}
	r, err := relay.New(log.With("component", "relay"), pool, listenCfg, rdb, rcfg, reg)
	if err != nil {
		closeAll()
		return nil, nil, nil, fmt.Errorf("relay: %w", err)
	}
	slot := ""
	if cfg.OutboxTransport == relay.TransportLogical {
		slot = cfg.Slot
	}
	reg.MustRegister(newStreamCollector(rdb, pool, cfg.Stream, slot))
	ready = func(ctx context.Context) error {
		if err := pool.Ping(ctx); err != nil {
			return fmt.Errorf("database: %w", err)
		}
		if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		return guard.Err()
	}
	return r.Run, ready, closeAll, nil
}

// buildPull makes the poller, once both services answer.
func buildPull(ctx context.Context, log *slog.Logger, cfg config, client *http.Client, guard *reconcile.Guard, reg prometheus.Registerer) (loop, ready func(context.Context) error, closeAll func(), err error) {
	for name, base := range map[string]string{"CONFERENCE_URL": cfg.ConferenceURL, "ATTENDEE_URL": cfg.AttendeeURL} {
		if err := waitHealthy(ctx, client, base); err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	src := &syncapi.Source{Base: cfg.ConferenceURL, Client: client}
	dst := &syncapi.Attendee{Base: cfg.AttendeeURL, Token: cfg.Token, Client: client}
	rec, err := reconcile.New(log.With("component", "reconcile"), src, dst, reconcile.Config{})
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := poller.New(log.With("component", "poller"), src, dst, rec, guard, poller.Config{
		Mode: cfg.PullMode, Interval: cfg.PollInterval, ReconcileInterval: cfg.ReconcileInterval,
	}, reg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("poller: %w", err)
	}
	ready = func(ctx context.Context) error {
		for name, base := range map[string]string{"api-conference": cfg.ConferenceURL, "api-attendee": cfg.AttendeeURL} {
			if err := healthy(ctx, client, base); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return guard.Err()
	}
	return p.Run, ready, func() {}, nil
}

func newReconciler(log *slog.Logger, cfg config, client *http.Client) (*reconcile.Reconciler, error) {
	src := &syncapi.Source{Base: cfg.ConferenceURL, Client: client}
	dst := &syncapi.Attendee{Base: cfg.AttendeeURL, Token: cfg.Token, Client: client}
	rec, err := reconcile.New(log.With("component", "reconcile"), src, dst, reconcile.Config{})
	if err != nil {
		return nil, fmt.Errorf("reconcile: %w", err)
	}
	return rec, nil
}

func routes(reg *prometheus.Registry, ready func(context.Context) error, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": "Service Unavailable", "status": 503, "detail": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	// Profiles, for finding what stands between the push path and the machine's floor. They
	// have no authentication and a trace can run for minutes, so only SYNC_PPROF=on serves them.
	if withPprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// connectPostgres opens the pool the relay claims outbox rows with, retrying while the
// database starts, and returns the connection settings for its LISTEN connection too.
func connectPostgres(ctx context.Context, dsn string) (*pgxpool.Pool, *pgx.ConnConfig, error) {
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	pcfg.ConnConfig.RuntimeParams["search_path"] = conferenceSchema
	pcfg.MaxConns = 4
	err = retry(ctx, func(ctx context.Context) error {
		pool, err := pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			return err
		}
		defer pool.Close()
		return pool.Ping(ctx)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	return pool, pcfg.ConnConfig.Copy(), nil
}

// retry calls fn until it succeeds, the server says no for good, or connectTimeout passes.
func retry(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	wait := 100 * time.Millisecond
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code != "57P03" {
			return err // the server answered and refused (no such database, bad password)
		}
		select {
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
				return fmt.Errorf("not reachable within %s: %w", connectTimeout, err)
			}
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// offOr logs a duration whose zero means off.
func offOr(d time.Duration) string {
	if d == 0 {
		return "off"
	}
	return d.String()
}

func healthy(ctx context.Context, client *http.Client, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s/healthz: status %d", base, resp.StatusCode)
	}
	return nil
}

func waitHealthy(ctx context.Context, client *http.Client, base string) error {
	return retry(ctx, func(ctx context.Context) error { return healthy(ctx, client, base) })
}
