package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"conferencego/service/envconf"
	"conferencego/syncer/redisconn"
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

func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// newDatabase creates an empty database for t (the relay only retries until api-conference
// has made its outbox) and returns its URL.
func newDatabase(t *testing.T) string {
	t.Helper()
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		unavailable(t, "Postgres is not reachable at %s: %v", admin, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "t_syncer_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func TestRunPushServesHealthAndStops(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		unavailable(t, "Redis is not reachable on 127.0.0.1:6379: %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	stream := "test.syncer." + hex.EncodeToString(b)
	t.Cleanup(func() { rdb.Del(context.Background(), stream, redisconn.Keys(stream).Epoch) })
	addr := freeAddr(t)
	env := map[string]string{
		"HTTP_ADDR": addr, "SYNC_MODE": "push", "DATABASE_URL": newDatabase(t), "REDIS_URL": "redis://127.0.0.1:6379/0",
		"SYNC_STREAM": stream, "LOG_LEVEL": "debug", "LOG_FORMAT": "json",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, logs) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("run returned before serving: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /healthz: %v\n%s", err, logs)
		}
		time.Sleep(20 * time.Millisecond) // polling against a deadline
	}
	for path, want := range map[string]string{"/readyz": `"ready"`, "/metrics": "relay_events_published_total"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
	if !strings.Contains(logs.String(), "SYNC_TOKEN is unset") {
		t.Errorf("push mode without SYNC_TOKEN does not warn that self-healing is off:\n%s", logs)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not stop")
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		env  map[string]string
		want []string
	}{
		"unknown mode":            {map[string]string{"SYNC_MODE": "both"}, []string{"SYNC_MODE"}},
		"pull without token":      {map[string]string{"SYNC_MODE": "pull"}, []string{"SYNC_TOKEN"}},
		"bad poll interval":       {map[string]string{"SYNC_POLL_INTERVAL": "often"}, []string{"SYNC_POLL_INTERVAL"}},
		"too short poll interval": {map[string]string{"SYNC_POLL_INTERVAL": "1ms"}, []string{"SYNC_POLL_INTERVAL"}},
		"bad reconcile interval":  {map[string]string{"SYNC_RECONCILE_INTERVAL": "-5s"}, []string{"SYNC_RECONCILE_INTERVAL"}},
		"bad conference URL":      {map[string]string{"CONFERENCE_URL": "localhost:8000"}, []string{"CONFERENCE_URL"}},
		"bad attendee URL":        {map[string]string{"ATTENDEE_URL": "ftp://x"}, []string{"ATTENDEE_URL"}},
		"bad redis URL":           {map[string]string{"REDIS_URL": "http://x"}, []string{"REDIS_URL"}},
		"bad database URL":        {map[string]string{"DATABASE_URL": "mysql://x"}, []string{"DATABASE_URL"}},
		"bad max length":          {map[string]string{"SYNC_STREAM_MAXLEN": "10"}, []string{"SYNC_STREAM_MAXLEN"}},
		"negative replicas":       {map[string]string{"SYNC_WAIT_REPLICAS": "-1"}, []string{"SYNC_WAIT_REPLICAS"}},
		"replicas not a number":   {map[string]string{"SYNC_WAIT_REPLICAS": "two"}, []string{"SYNC_WAIT_REPLICAS"}},
		"bad wait timeout":        {map[string]string{"SYNC_WAIT_TIMEOUT": "soon"}, []string{"SYNC_WAIT_TIMEOUT"}},
		"bad outbox poll":         {map[string]string{"SYNC_OUTBOX_POLL": "often"}, []string{"SYNC_OUTBOX_POLL"}},
		"too short outbox poll":   {map[string]string{"SYNC_OUTBOX_POLL": "100us"}, []string{"SYNC_OUTBOX_POLL"}},
		"too long outbox poll":    {map[string]string{"SYNC_OUTBOX_POLL": "2m"}, []string{"SYNC_OUTBOX_POLL"}},
		"bad linger":              {map[string]string{"SYNC_RELAY_LINGER": "a bit"}, []string{"SYNC_RELAY_LINGER"}},
		"bad transport":           {map[string]string{"SYNC_OUTBOX_TRANSPORT": "wal"}, []string{"SYNC_OUTBOX_TRANSPORT"}},
		"bad slot":                {map[string]string{"SYNC_SLOT": "slot-1"}, []string{"SYNC_SLOT"}},
		"polling a slot":          {map[string]string{"SYNC_OUTBOX_TRANSPORT": "logical", "SYNC_OUTBOX_POLL": "2ms"}, []string{"SYNC_OUTBOX_POLL"}},
		"too long linger":         {map[string]string{"SYNC_RELAY_LINGER": "5s"}, []string{"SYNC_RELAY_LINGER"}},
		"stream with a space":     {map[string]string{"SYNC_STREAM": "a b"}, []string{"SYNC_STREAM"}},
		"bad address":             {map[string]string{"HTTP_ADDR": "8002"}, []string{"HTTP_ADDR"}},
		"bad log level":           {map[string]string{"LOG_LEVEL": "chatty"}, []string{"LOG_LEVEL"}},
		"several":                 {map[string]string{"SYNC_MODE": "pull", "LOG_FORMAT": "xml"}, []string{"SYNC_TOKEN", "LOG_FORMAT"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), nil, func(k string) string { return tt.env[k] }, io.Discard)
			var cerr envconf.Problems
			if !errors.As(err, &cerr) {
				t.Fatalf("run = %v, want a configuration error", err)
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

func TestUnreachableRedisNamesTheVariable(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HTTP_ADDR": freeAddr(t), "DATABASE_URL": newDatabase(t), "REDIS_URL": "redis://127.0.0.1:1/0"}
	start := time.Now()
	err := run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard)
	if err == nil || !strings.HasPrefix(err.Error(), "REDIS_URL") || strings.Contains(err.Error(), "\n") {
		t.Errorf("run = %v, want one line starting with REDIS_URL", err)
	}
	t.Logf("gave up after %s", time.Since(start).Round(time.Second))
}

func TestDurations(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"off": 0, "0": 0, "250ms": 250 * time.Millisecond, "1m": time.Minute} {
		cfg, err := loadConfig(func(k string) string { return map[string]string{"SYNC_RECONCILE_INTERVAL": in}[k] }, false)
		if err != nil || cfg.ReconcileInterval != want {
			t.Errorf("SYNC_RECONCILE_INTERVAL=%q: %v, %v", in, cfg.ReconcileInterval, err)
		}
	}
	logicalEnv := map[string]string{"SYNC_OUTBOX_TRANSPORT": "logical", "SYNC_SLOT": "outbox_2"}
	if cfg, err := loadConfig(func(k string) string { return logicalEnv[k] }, false); err != nil || cfg.OutboxTransport != "logical" || cfg.Slot != "outbox_2" {
		t.Errorf("%v: transport %s, slot %s, %v", logicalEnv, cfg.OutboxTransport, cfg.Slot, err)
	}
	relayEnv := map[string]string{"SYNC_OUTBOX_POLL": "2ms", "SYNC_RELAY_LINGER": "500us"}
	if cfg, err := loadConfig(func(k string) string { return relayEnv[k] }, false); err != nil || cfg.OutboxPoll != 2*time.Millisecond || cfg.RelayLinger != 500*time.Microsecond {
		t.Errorf("%v: poll %s, linger %s, %v", relayEnv, cfg.OutboxPoll, cfg.RelayLinger, err)
	}
	if cfg, err := loadConfig(func(string) string { return "" }, false); err != nil || cfg.OutboxPoll != 0 || cfg.RelayLinger != 0 {
		t.Errorf("defaults: poll %s, linger %s, %v; want both off", cfg.OutboxPoll, cfg.RelayLinger, err)
	}
	if _, err := loadConfig(func(k string) string { return map[string]string{"SYNC_POLL_INTERVAL": "off"}[k] }, false); err == nil {
		t.Error("off accepted where a duration is required")
	}
}

func TestPprofIsOffByDefault(t *testing.T) {
	t.Parallel()
	ready := func(context.Context) error { return nil }
	for _, tt := range []struct {
		on   bool
		want int
	}{{false, http.StatusNotFound}, {true, http.StatusOK}} {
		rec := httptest.NewRecorder()
		routes(prometheus.NewRegistry(), ready, tt.on).ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/", nil))
		if rec.Code != tt.want {
			t.Errorf("pprof %v: GET /debug/pprof/ = %d, want %d", tt.on, rec.Code, tt.want)
		}
	}
	for env, want := range map[string]bool{"": false, "off": false, "on": true, "ON": true} {
		cfg, err := loadConfig(func(k string) string { return map[string]string{"SYNC_PPROF": env}[k] }, false)
		if err != nil || cfg.Pprof != want {
			t.Errorf("SYNC_PPROF=%q: pprof %v, %v; want %v", env, cfg.Pprof, err, want)
		}
	}
	_, err := loadConfig(func(k string) string { return map[string]string{"SYNC_PPROF": "yes"}[k] }, false)
	if err == nil || !strings.Contains(err.Error(), "SYNC_PPROF") || strings.Contains(err.Error(), "\n") {
		t.Errorf("SYNC_PPROF=yes: %v, want one line naming SYNC_PPROF", err)
	}
}

// TestStartLogMasksServiceURLCredentials: a password in CONFERENCE_URL or ATTENDEE_URL
// (basic auth in front of a service) must not reach the log, nor one in a password=
// parameter of REDIS_URL (a Sentinel URL's primary password) or DATABASE_URL.
func TestStartLogMasksServiceURLCredentials(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	env := map[string]string{
		"SYNC_MODE": "pull", "SYNC_TOKEN": "t", "LOG_FORMAT": "json", "HTTP_ADDR": "127.0.0.1:0",
		"CONFERENCE_URL": "http://conf:s3cret-conf@127.0.0.1:1", "ATTENDEE_URL": "http://att:s3cret-att@127.0.0.1:1",
		"REDIS_URL":    "redis://sentinel:s3cret-sentinel@127.0.0.1:1?master_name=m&password=s3cret-redis",
		"DATABASE_URL": "postgres://u@127.0.0.1:1/db?password=s3cret-db",
	}
	var out bytes.Buffer
	_ = run(ctx, nil, func(k string) string { return env[k] }, &out)
	if !strings.Contains(out.String(), "starting syncer") {
		t.Fatalf("no start line in %q", out.String())
	}
	if strings.Contains(out.String(), "s3cret") {
		t.Errorf("the log shows a service URL's password:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "conf:xxxxx@127.0.0.1:1") {
		t.Errorf("the log does not show the masked URL:\n%s", out.String())
	}
}
