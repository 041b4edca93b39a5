package stack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The test binary doubles as the service it starts: with STACK_TEST_SERVE set it serves
// /healthz on HTTP_ADDR (after STACK_TEST_SERVE's delay) until it is signalled, or exits
// at once with STACK_TEST_SERVE=exit.
func TestMain(m *testing.M) {
	switch v := os.Getenv("STACK_TEST_SERVE"); v {
	case "":
		os.Exit(m.Run())
	case "exit":
		fmt.Println("giving up")
		os.Exit(3)
	default:
		delay, err := time.ParseDuration(v)
		if err != nil {
			os.Exit(2)
		}
		time.Sleep(delay) // a slow start, the thing Start waits out
		http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {})
		fmt.Println("serving")
		_ = http.ListenAndServe(os.Getenv("HTTP_ADDR"), nil)
		os.Exit(1)
	}
}

func spec(t *testing.T, serve string) Spec {
	t.Helper()
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Name: "self", Bin: os.Args[0], Addr: addr, Env: []string{"STACK_TEST_SERVE=" + serve},
		Log: filepath.Join(t.TempDir(), "self.log")}
}

func TestStartWaitsForHealthAndStops(t *testing.T) {
	s := spec(t, "300ms")
	p, err := Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(p.URL() + "/healthz")
	if err != nil {
		t.Fatalf("Start returned before the process served: %v", err)
	}
	resp.Body.Close()
	if killed := p.Stop(15 * time.Second); killed {
		t.Error("SIGTERM did not end the process")
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned while the process still ran")
	}
	if log, _ := os.ReadFile(s.Log); !strings.Contains(string(log), "serving") {
		t.Errorf("the log file has %q, want the process's output", log)
	}
	p.Kill() // on an ended process: nothing to do, and no hang
}

func TestStartReportsAnEarlyExit(t *testing.T) {
	_, err := Start(context.Background(), spec(t, "exit"))
	if err == nil || !strings.Contains(err.Error(), "exited before it was healthy") {
		t.Fatalf("Start = %v, want the early exit reported", err)
	}
}

func TestStartGivesUpAfterTheTimeout(t *testing.T) {
	s := spec(t, "1h")
	s.HealthTimeout = 200 * time.Millisecond
	_, err := Start(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), "not healthy within") {
		t.Fatalf("Start = %v, want the timeout reported", err)
	}
}

func TestDatabaseCreateAndDrop(t *testing.T) {
	adminURL := os.Getenv("TEST_DATABASE_URL")
	if adminURL == "" {
		adminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx := context.Background()
	db, err := CreateDatabase(ctx, adminURL, "stack_test_")
	if errors.Is(err, ErrUnreachable) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatalf("connect to the new database: %v", err)
	}
	// Drop must succeed with a connection still open: a crashed run leaves some behind.
	defer conn.Close(ctx)
	if err := db.Drop(); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var n int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", db.Name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s is still there after Drop", db.Name)
	}
}
