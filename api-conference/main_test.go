package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"conferencego/api-conference/internal/postgres/pgtest"
	"conferencego/service/envconf"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is a log sink that run and the test can use at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs the service as main would, on a fresh database and a free port, and returns its
// base URL, a cancel that plays SIGTERM, and the channel run's result arrives on.
func start(t *testing.T) (base, dsn string, cancel context.CancelFunc, done <-chan error, logs *syncBuffer) {
	t.Helper()
	dsn = pgtest.NewDatabase(t)
	addr := freeAddr(t)
	env := map[string]string{"HTTP_ADDR": addr, "DATABASE_URL": dsn, "LOG_LEVEL": "debug"}
	ctx, cancel := context.WithCancel(context.Background())
	logs = &syncBuffer{}
	result := make(chan error, 1)
	go func() { result <- run(ctx, []string{"api-conference"}, func(k string) string { return env[k] }, logs) }()
	t.Cleanup(cancel)
	base = "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-result:
			t.Fatalf("run returned before serving: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /healthz within 20s: %v\n%s", err, logs)
		}
		time.Sleep(20 * time.Millisecond) // polling against a deadline, not waiting for an event
	}
	return base, dsn, cancel, result, logs
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Errorf("POST %s: %v", url, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRunServesAndStops(t *testing.T) {
	t.Parallel()
	base, _, cancel, done, logs := start(t)
	for _, path := range []string{"/readyz", "/metrics", "/api/states/"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	if code, body := post(t, base+"/api/locations/", `{"name":"Hall","city":"Austin","room_count":1,"state":"TX"}`); code != 201 {
		t.Errorf("create location: %d %s", code, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("no stop in the log:\n%s", logs)
	}
}

// On SIGTERM a request already being served finishes and gets its answer.
func TestShutdownFinishesInFlightRequests(t *testing.T) {
	t.Parallel()
	base, dsn, cancel, done, _ := start(t)
	if code, body := post(t, base+"/api/locations/", `{"name":"Hall","city":"Austin","room_count":1,"state":"TX"}`); code != 201 {
		t.Fatalf("create location: %d %s", code, body)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "LOCK TABLE conference.conferences IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		code int
		body string
	}
	answered := make(chan answer, 1)
	go func() {
		code, body := post(t, base+"/api/conferences/", `{"name":"GopherCon","starts":"2027-03-01","ends":"2027-03-02","max_presentations":1,"max_attendees":1,"location":1}`)
		answered <- answer{code, body}
	}()
	// Wait until the request is inside the database, blocked on the lock.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%conferences%'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the database")
		}
		time.Sleep(10 * time.Millisecond) // polling against a deadline
	}
	cancel()
	// Shutdown has begun; the request is still blocked. Let it through.
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if a := <-answered; a.code != 201 {
		t.Errorf("in-flight request answered %d: %s", a.code, a.body)
	}
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		env  map[string]string
		want []string
	}{
		"bad address":              {map[string]string{"HTTP_ADDR": "8000"}, []string{"HTTP_ADDR"}},
		"bad port":                 {map[string]string{"HTTP_ADDR": ":99999"}, []string{"HTTP_ADDR"}},
		"bad database":             {map[string]string{"DATABASE_URL": "mysql://x"}, []string{"DATABASE_URL"}},
		"bad origin":               {map[string]string{"CORS_ALLOWED_ORIGINS": "localhost:3000"}, []string{"CORS_ALLOWED_ORIGINS"}},
		"bad level":                {map[string]string{"LOG_LEVEL": "loud"}, []string{"LOG_LEVEL"}},
		"bad format":               {map[string]string{"LOG_FORMAT": "xml"}, []string{"LOG_FORMAT"}},
		"bad retention":            {map[string]string{"OUTBOX_RETENTION": "5s"}, []string{"OUTBOX_RETENTION"}},
		"bad tombstones":           {map[string]string{"TOMBSTONE_RETENTION": "a month"}, []string{"TOMBSTONE_RETENTION"}},
		"bad notify":               {map[string]string{"OUTBOX_NOTIFY": "later"}, []string{"OUTBOX_NOTIFY"}},
		"bad transport":            {map[string]string{"OUTBOX_TRANSPORT": "wal"}, []string{"OUTBOX_TRANSPORT"}},
		"bad slot":                 {map[string]string{"OUTBOX_SLOT": "My-Slot"}, []string{"OUTBOX_SLOT"}},
		"notify without an outbox": {map[string]string{"OUTBOX_TRANSPORT": "logical", "OUTBOX_NOTIFY": "commit"}, []string{"OUTBOX_NOTIFY"}},
		"several at once":          {map[string]string{"LOG_LEVEL": "loud", "HTTP_ADDR": "nope"}, []string{"LOG_LEVEL", "HTTP_ADDR"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), nil, func(k string) string { return tt.env[k] }, io.Discard)
			if err == nil {
				t.Fatal("run accepted the configuration")
			}
			var cerr envconf.Problems
			if !errors.As(err, &cerr) {
				t.Errorf("error is a %T, not a configError: %v", err, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			for _, v := range tt.want {
				if !strings.Contains(err.Error(), v) {
					t.Errorf("error %q does not name %s", err, v)
				}
			}
		})
	}
}

func TestUnreachableDatabaseNamesTheVariable(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HTTP_ADDR": freeAddr(t), "DATABASE_URL": pgtest.URLFor(t, "conferencego_no_such_database")}
	err := run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || strings.Contains(err.Error(), "\n") {
		t.Errorf("run = %v, want one line naming DATABASE_URL", err)
	}
}

func TestRefusesArguments(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"api-conference", "--port", "80"}, func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "environment") {
		t.Errorf("run = %v, want a pointer to the environment", err)
	}
}

func TestDefaultsAreValid(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(func(string) string { return "" }, false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != ":8000" || cfg.LogFormat != "json" || fmt.Sprint(cfg.CORSAllowedOrigins) != "[http://localhost:3000 http://localhost:3001]" ||
		cfg.OutboxNotify != "after" || cfg.OutboxTransport != "table" || cfg.OutboxSlot != "conferencego_outbox" {
		t.Errorf("defaults: %+v", cfg)
	}
	logical := map[string]string{"OUTBOX_TRANSPORT": "logical", "OUTBOX_NOTIFY": "after"}
	if cfg, err := loadConfig(func(k string) string { return logical[k] }, false); err != nil || cfg.OutboxNotify != "off" {
		t.Errorf("OUTBOX_TRANSPORT=logical: notify %s, %v; want off (no outbox row to notify about)", cfg.OutboxNotify, err)
	}
	if got := redactURL("postgres://svc:secret@db:5432/x"); strings.Contains(got, "secret") {
		t.Errorf("redactURL leaks the password: %s", got)
	}
}
