package httpedge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"conferencego/httpedge"
)

// TestServe serves until the context ends, then shuts down and returns nil.
func TestServe(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t)
	app.Get("/hello", func(c *fiber.Ctx) error { return c.SendString("hi") })
	logs, logw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- httpedge.Serve(ctx, slog.New(slog.NewJSONHandler(logw, nil)), app, "127.0.0.1:0", 5*time.Second)
		logw.Close()
	}()
	lines := bufio.NewScanner(logs)
	var first struct{ Msg, Addr string }
	if !lines.Scan() || json.Unmarshal(lines.Bytes(), &first) != nil || first.Msg != "edge-test is serving" {
		t.Fatalf("first log line %q; want edge-test is serving, with its address", lines.Text())
	}
	go func() { // the rest of the log, so that Serve never blocks on it
		for lines.Scan() {
		}
	}()
	resp, err := http.Get("http://" + first.Addr + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /hello: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve = %v after the context ended; want nil", err)
	}
}

func TestServeNamesHTTPAddr(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t)
	err := httpedge.Serve(context.Background(), discard(), app, "127.0.0.1:99999", time.Second)
	if err == nil || !strings.HasPrefix(err.Error(), "HTTP_ADDR: ") {
		t.Errorf("Serve = %v; want an error naming HTTP_ADDR", err)
	}
}
