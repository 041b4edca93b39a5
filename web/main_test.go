package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(env(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != ":3000" || cfg.ConferenceURL != "http://localhost:8000" || cfg.AttendeeURL != "http://localhost:8001" ||
		cfg.SyncerURL != "http://localhost:8002" || cfg.LogFormat != "json" {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestConfigErrorsNameEveryVariableOnOneLine(t *testing.T) {
	t.Parallel()
	_, err := loadConfig(env(map[string]string{
		"HTTP_ADDR": "3000", "CONFERENCE_URL": "localhost:8000", "ATTENDEE_URL": "http://localhost:8001/api",
		"SYNCER_URL": "ftp://localhost", "LOG_LEVEL": "loud", "LOG_FORMAT": "xml",
	}), false)
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans lines: %q", msg)
	}
	for _, name := range []string{"HTTP_ADDR", "CONFERENCE_URL", "ATTENDEE_URL", "SYNCER_URL", "LOG_LEVEL", "LOG_FORMAT"} {
		if !strings.Contains(msg, name) {
			t.Errorf("error does not name %s: %s", name, msg)
		}
	}
}

func TestHandlerServesThePageItsConfigAndHealth(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(env(map[string]string{"CONFERENCE_URL": "http://localhost:18000/"}), false)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), cfg))
	defer srv.Close()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("/")
	if resp.StatusCode != 200 || !strings.Contains(body, `<script type="module" src="js/app.js">`) {
		t.Errorf("GET /: %d\n%s", resp.StatusCode, body)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "connect-src 'self' http://localhost:18000 http://localhost:8001 http://localhost:8002"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	_, body = get("/config.json")
	var pc pageConfig
	if err := json.Unmarshal([]byte(body), &pc); err != nil || pc.ConferenceURL != "http://localhost:18000" || pc.SyncerURL != "http://localhost:8002" {
		t.Errorf("config.json %s: %+v %v", body, pc, err)
	}
	for path, want := range map[string]string{
		"/healthz": `"ok"`, "/readyz": `"ready"`, "/js/app.js": "import", "/style.css": ":root",
		"/vendor/uplot/uPlot.iife.min.js": "uPlot", "/vendor/uplot/LICENSE": "MIT",
	} {
		if resp, body := get(path); resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
	if resp, _ := get("/favicon.ico"); resp.StatusCode != 204 {
		t.Errorf("GET /favicon.ico: %d, want 204", resp.StatusCode)
	}
	if resp, _ := get("/nothing"); resp.StatusCode != 404 {
		t.Errorf("GET /nothing: %d", resp.StatusCode)
	}
	if resp, _ := get("/js/app.js"); !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("a module is served as %q; browsers refuse a module that is not JavaScript", resp.Header.Get("Content-Type"))
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunServesAndStops(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, env(map[string]string{"HTTP_ADDR": addr}), logs) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
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
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
	if !strings.Contains(logs.String(), "web is serving") {
		t.Errorf("no start line in the log:\n%s", logs)
	}
	if err := run(context.Background(), []string{"web", "extra"}, env(nil), io.Discard); err == nil {
		t.Error("run took an argument")
	}
}
