// Command chaos runs the whole system under random faults and checks that nothing is lost:
// open-loop writes through api-conference's API for DURATION (default 10m, shared equally by
// push on the outbox table, push on the logical-decoding transport and pull, in turn), while a seeded scheduler injects one fault after another from the
// catalogue (faults.go: kill -9 of each process, Redis restarted empty, with its append-only
// file or from an older snapshot, Postgres connections terminated, and network faults through
// an embedded toxiproxy: latency, a blackhole, a cut pipeline, reset connections, a slow and a
// cut api-conference). Each fault heals before the next, and the time until the copy holds
// everything committed before the heal is its time to converge. At the end it heals, waits
// until quiet and checks lost = stale = phantom = 0 and that no sampled VO version ever went
// backwards; it counts duplicates in the stream. It prints a table per fault kind, each
// process's RSS and goroutines at start and end and the peak outbox and stream lengths, and
// writes the report and a plot of the lag over time, faults marked, to OUT (out/chaos).
//
//	go tool task chaos DURATION=10m
//
// Environment: DURATION, SEED (default: the clock), RATE (writes/s, default 20), OUT, SKIP
// (fault kinds to leave out, comma-separated, as the report names them), MODES (push,
// push-logical, pull: which to run, comma-separated; push-logical needs OWN_POSTGRES),
// OWN_POSTGRES (default on: each mode runs on a Postgres cluster of its own, made with initdb,
// which the "postgres restarted" fault stops and starts, with wal_level=logical for push-logical;
// off: TEST_DATABASE_URL's server, a server where it may create databases, default the local
// one, no restarts, and no push-logical).
// It needs redis-server on the PATH. It exits 1 when the check fails.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"conferencego/bench/stack"
)

// redisLog sends go-redis's own log to slog at debug level.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg, err := configFromEnv()
	if err != nil {
		log.Error("bad setting", "err", err)
		os.Exit(2)
	}
	cfg.Log = log
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "chaos-bin-")
	if err != nil {
		log.Error("temp dir", "err", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	cfg.BinDir = dir
	ok, err := chaos(ctx, cfg, os.Stdout)
	if err != nil {
		log.Error("chaos run failed", "err", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

func configFromEnv() (config, error) {
	cfg := config{Duration: 10 * time.Minute, Seed: time.Now().UnixNano(), Rate: 20, OwnPostgres: os.Getenv("OWN_POSTGRES") != "off",
		AdminURL: cmp.Or(os.Getenv("TEST_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")}
	var err error
	if v := os.Getenv("DURATION"); v != "" {
		if cfg.Duration, err = time.ParseDuration(v); err != nil {
			return cfg, fmt.Errorf("DURATION=%q: %w", v, err)
		}
	}
	if v := os.Getenv("SEED"); v != "" {
		if cfg.Seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			return cfg, fmt.Errorf("SEED=%q: %w", v, err)
		}
	}
	if v := os.Getenv("RATE"); v != "" {
		if cfg.Rate, err = strconv.ParseFloat(v, 64); err != nil || cfg.Rate <= 0 {
			return cfg, fmt.Errorf("RATE=%q: want writes per second above 0", v)
		}
	}
	if v := os.Getenv("SKIP"); v != "" {
		cfg.Skip = strings.Split(v, ",")
	}
	if v := os.Getenv("MODES"); v != "" {
		for _, m := range strings.Split(v, ",") {
			if m != "push" && m != "push-logical" && m != "pull" {
				return cfg, fmt.Errorf("MODES=%q: want a comma-separated list of push, push-logical and pull", v)
			}
			cfg.Modes = append(cfg.Modes, m)
		}
	}
	cfg.Out = os.Getenv("OUT")
	if cfg.Out == "" {
		root, err := stack.WorkspaceRoot()
		if err != nil {
			return cfg, err
		}
		cfg.Out = filepath.Join(root, "out", "chaos")
	}
	return cfg, nil
}

// chaos builds the binaries into cfg.BinDir (unless they are there), runs both modes, writes
// the report and plots to cfg.Out and to w, and reports whether every check held.
func chaos(ctx context.Context, cfg config, w *os.File) (bool, error) {
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return false, err
	}
	for _, name := range stack.Services {
		if _, err := os.Stat(filepath.Join(cfg.BinDir, name)); err == nil {
			continue
		}
		if _, err := stack.Build(ctx, cfg.BinDir, name); err != nil {
			return false, err
		}
	}
	// go-redis logs every failed dial of the check's own client while Redis is down on purpose.
	redis.SetLogger(redisLog{cfg.Log})
	cfg.Log.Info("chaos run", "duration", cfg.Duration.String(), "seed", cfg.Seed, "rate", cfg.Rate, "out", cfg.Out)
	modes := cfg.Modes
	if len(modes) == 0 {
		modes = []string{"push", "pull"}
		if cfg.OwnPostgres {
			modes = []string{"push", "push-logical", "pull"}
		}
	}
	var results []*result
	for i, mode := range modes {
		if mode == "push-logical" && !cfg.OwnPostgres {
			return false, errors.New("push-logical needs a cluster of its own with wal_level=logical: leave OWN_POSTGRES on")
		}
		res, err := runMode(ctx, cfg, mode, cfg.Duration/time.Duration(len(modes)), cfg.Seed+int64(i))
		if err != nil {
			return false, fmt.Errorf("%s: %w", mode, err)
		}
		results = append(results, res)
		if err := plotLag(res, filepath.Join(cfg.Out, "lag-"+mode+".png")); err != nil {
			return false, fmt.Errorf("plot: %w", err)
		}
	}
	text := report(cfg, results)
	if _, err := fmt.Fprint(w, text); err != nil {
		return false, err
	}
	if err := os.WriteFile(filepath.Join(cfg.Out, "report.md"), []byte(text), 0o644); err != nil {
		return false, err
	}
	ok := true
	for _, r := range results {
		ok = ok && r.ok()
	}
	return ok, nil
}

// ok is whether a mode's run passed: converged, nothing lost, stale or phantom, no version
// went backwards, and every fault converged.
func (r *result) ok() bool {
	if !r.Converged || r.Lost != 0 || r.Stale != 0 || r.Phantom != 0 || r.Backwards != 0 {
		return false
	}
	for _, f := range r.Faults {
		if f.Failed {
			return false
		}
	}
	return true
}
