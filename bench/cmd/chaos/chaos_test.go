package main

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestChaos runs the chaos program's core for CHAOS_DURATION in all (default 60s: 20 s for each
// of push, push-logical and pull, a handful of faults each, which is what CI can afford; task
// chaos runs 10m)
// and fails unless every check held. CHAOS_SEED replays a run. The report goes to the test's
// temporary directory, and is logged.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("a chaos run takes a minute")
	}
	// One seed, so that a failure in CI replays exactly; task chaos draws a new one each run.
	cfg := config{Duration: 60 * time.Second, Seed: 14, Rate: 20, OwnPostgres: true,
		AdminURL: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		BinDir:   t.TempDir(), Out: t.TempDir(), Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if v := os.Getenv("TEST_DATABASE_URL"); v != "" {
		cfg.AdminURL = v
	}
	if v := os.Getenv("CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("CHAOS_DURATION=%q: %v", v, err)
		}
		cfg.Duration = d
	}
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: %v", v, err)
		}
		cfg.Seed = s
	}
	t.Logf("seed %d (CHAOS_SEED=%d replays it)", cfg.Seed, cfg.Seed)
	if _, err := exec.LookPath("redis-server"); err != nil {
		unavailable(t, "redis-server is not installed: "+err.Error())
	}
	conn, err := pgx.Connect(context.Background(), cfg.AdminURL)
	if err != nil {
		unavailable(t, "Postgres is not reachable (set TEST_DATABASE_URL): "+err.Error())
	}
	conn.Close(context.Background())

	out, err := os.CreateTemp(t.TempDir(), "report-*.md")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	ok, err := chaos(context.Background(), cfg, out)
	if err != nil {
		t.Fatal(err)
	}
	report, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", report)
	if !ok {
		t.Fatal("the chaos run failed its checks; see the report")
	}
}

// unavailable skips t for a missing server on a developer's machine, and fails it in CI.
func unavailable(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
