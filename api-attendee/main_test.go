package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"conferencego/api-attendee/internal/postgres/pgtest"
	"conferencego/api-attendee/internal/redisstream/redistest"
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

// poll calls cond until it holds, failing the test after timeout.
func poll(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("%s: not within %s", what, timeout)
		case <-tick.C:
		}
	}
}

type started struct {
	base   string
	cancel context.CancelFunc
	done   <-chan error
	logs   *syncBuffer
}

// start runs the service as main would, on a fresh database and a free port, with env on top
// of those, and waits for /healthz.
func start(t *testing.T, env map[string]string) started {
	t.Helper()
	addr := freeAddr(t)
	full := map[string]string{"HTTP_ADDR": addr, "DATABASE_URL": pgtest.NewDatabase(t), "LOG_LEVEL": "debug"}
	for k, v := range env {
		full[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	result := make(chan error, 1)
	go func() { result <- run(ctx, []string{"api-attendee"}, func(k string) string { return full[k] }, logs) }()
	t.Cleanup(cancel)
	s := started{base: "http://" + addr, cancel: cancel, done: result, logs: logs}
	poll(t, 20*time.Second, "GET /healthz", func() bool {
		select {
		case err := <-result:
			t.Fatalf("run returned before serving: %v\n%s", err, logs)
		default:
		}
		resp, err := http.Get(s.base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return s
}

func (s started) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(s.logs.String(), `"msg":"stopped"`) {
		t.Errorf("no stop in the log:\n%s", s.logs)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRunPullModeServesAndStops(t *testing.T) {
	t.Parallel()
	s := start(t, map[string]string{"SYNC_MODE": "pull"})
	for _, path := range []string{"/readyz", "/metrics", "/api/conferences/", "/api/attendees/"} {
		if code, body := get(t, s.base+path); code != 200 {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
	// Without SYNC_TOKEN the internal endpoint is off, and the log says so.
	resp, err := http.Post(s.base+"/internal/changes", "application/json", strings.NewReader(`{"changes": []}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("internal endpoint without SYNC_TOKEN: %d, want 401", resp.StatusCode)
	}
	if !strings.Contains(s.logs.String(), "SYNC_TOKEN is not set") {
		t.Errorf("the start-up log does not say the internal endpoint is off:\n%s", s.logs)
	}
	s.stop(t)
}

// In push mode run consumes the stream: an event XADDed with the contract shows up in the
// API, and the consumer's counters are on /metrics.
func TestRunPushModeConsumes(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	stream, group := redistest.Names(t, rdb)
	s := start(t, map[string]string{
		"SYNC_MODE": "push", "REDIS_URL": redistest.URL(), "SYNC_STREAM": stream, "SYNC_GROUP": group,
		"SYNC_TOKEN": "a-token-long-enough-1234",
	})
	fields, err := pgtest.Created(42, 1, "GopherCon", 100).Fields()
	if err != nil {
		t.Fatal(err)
	}
	values := make([]any, len(fields))
	for i, f := range fields {
		values[i] = f
	}
	if err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: values}).Err(); err != nil {
		t.Fatal(err)
	}
	poll(t, 15*time.Second, "conference 42 in the API", func() bool {
		code, _ := get(t, s.base+"/api/conferences/42/")
		return code == 200
	})
	_, body := get(t, s.base+"/api/conferences/")
	var list struct {
		Conferences []struct {
			ID   int64  `json:"id"`
			Name string `json:"name"`
		} `json:"conferences"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list.Conferences) != 1 || list.Conferences[0].Name != "GopherCon" {
		t.Errorf("list: %s (%v)", body, err)
	}
	_, metrics := get(t, s.base+"/metrics")
	for _, want := range []string{
		fmt.Sprintf(`attendee_consumer_entries_applied_total{group=%q,stream=%q} 1`, group, stream),
		fmt.Sprintf(`attendee_consumer_lag_seconds_count{group=%q,stream=%q} 1`, group, stream),
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if code, body := get(t, s.base+"/readyz"); code != 200 {
		t.Errorf("readyz: %d %s", code, body)
	}
	s.stop(t)
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		env  map[string]string
		want []string
	}{
		"bad address":        {map[string]string{"HTTP_ADDR": "8001"}, []string{"HTTP_ADDR"}},
		"bad port":           {map[string]string{"HTTP_ADDR": ":99999"}, []string{"HTTP_ADDR"}},
		"bad database":       {map[string]string{"DATABASE_URL": "mysql://x"}, []string{"DATABASE_URL"}},
		"bad redis":          {map[string]string{"REDIS_URL": "http://localhost:6379"}, []string{"REDIS_URL"}},
		"bad mode":           {map[string]string{"SYNC_MODE": "carrier-pigeon"}, []string{"SYNC_MODE"}},
		"bad stream":         {map[string]string{"SYNC_STREAM": "two words"}, []string{"SYNC_STREAM"}},
		"bad group":          {map[string]string{"SYNC_GROUP": strings.Repeat("g", 201)}, []string{"SYNC_GROUP"}},
		"bad batch size":     {map[string]string{"SYNC_BATCH_SIZE": "0"}, []string{"SYNC_BATCH_SIZE"}},
		"bad claim idle":     {map[string]string{"SYNC_CLAIM_IDLE": "soon"}, []string{"SYNC_CLAIM_IDLE"}},
		"bad max deliveries": {map[string]string{"SYNC_MAX_DELIVERIES": "-1"}, []string{"SYNC_MAX_DELIVERIES"}},
		"token with spaces":  {map[string]string{"SYNC_TOKEN": " secret-token-123456 "}, []string{"SYNC_TOKEN"}},
		"bad origin":         {map[string]string{"CORS_ALLOWED_ORIGINS": "localhost:3000"}, []string{"CORS_ALLOWED_ORIGINS"}},
		"bad level":          {map[string]string{"LOG_LEVEL": "loud"}, []string{"LOG_LEVEL"}},
		"bad format":         {map[string]string{"LOG_FORMAT": "xml"}, []string{"LOG_FORMAT"}},
		"several at once":    {map[string]string{"LOG_LEVEL": "loud", "SYNC_MODE": "both"}, []string{"LOG_LEVEL", "SYNC_MODE"}},
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

func TestUnreachableDependenciesNameTheVariable(t *testing.T) {
	t.Parallel()
	t.Run("database", func(t *testing.T) {
		t.Parallel()
		env := map[string]string{"HTTP_ADDR": freeAddr(t), "SYNC_MODE": "pull", "DATABASE_URL": pgtest.URLFor(t, "conferencego_no_such_database")}
		err := run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || strings.Contains(err.Error(), "\n") {
			t.Errorf("run = %v, want one line naming DATABASE_URL", err)
		}
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		env := map[string]string{
			"HTTP_ADDR": freeAddr(t), "SYNC_MODE": "push", "DATABASE_URL": pgtest.NewDatabase(t),
			"REDIS_URL": fmt.Sprintf("redis://%s/0", freeAddr(t)), // nothing listens there
		}
		ctx, cancel := context.WithTimeout(context.Background(), connectTimeout+10*time.Second)
		defer cancel()
		err := run(ctx, nil, func(k string) string { return env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "REDIS_URL") || strings.Contains(err.Error(), "\n") {
			t.Errorf("run = %v, want one line naming REDIS_URL", err)
		}
	})
}

func TestRefusesArguments(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"api-attendee", "--port", "80"}, func(string) string { return "" }, io.Discard)
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
	if cfg.HTTPAddr != ":8001" || cfg.SyncMode != "push" || cfg.Stream != "conference.changes" || cfg.Group != "attendee" ||
		cfg.RedisURL != "redis://localhost:6379/0" || cfg.BatchSize != 100 || cfg.ClaimMinIdle != 30*time.Second ||
		cfg.MaxDeliveries != 5 || cfg.SyncToken != "" || cfg.LogFormat != "json" ||
		fmt.Sprint(cfg.CORSAllowedOrigins) != "[http://localhost:3000 http://localhost:3001]" {
		t.Errorf("defaults: %+v", cfg)
	}
	if got := redactURL("redis://:secret@redis:6379/0"); strings.Contains(got, "secret") {
		t.Errorf("redactURL leaks the password: %s", got)
	}
}
