package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz", "/ok":
			w.WriteHeader(http.StatusOK)
		default:
			http.Error(w, "database: connection refused", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	none := env(nil)

	tests := []struct {
		name    string
		args    []string
		getenv  func(string) string
		wantErr string
	}{
		{name: "url answers 200", args: []string{srv.URL + "/ok"}, getenv: none},
		{name: "url answers 503", args: []string{srv.URL + "/down"}, getenv: none, wantErr: "503"},
		{name: "port from HTTP_ADDR", getenv: env(map[string]string{"HTTP_ADDR": ":" + port})},
		{name: "HTTP_ADDR with host", getenv: env(map[string]string{"HTTP_ADDR": "0.0.0.0:" + port})},
		{name: "no URL, no HTTP_ADDR", getenv: none, wantErr: "HTTP_ADDR"},
		{name: "nothing listens", args: []string{"http://127.0.0.1:1/readyz"}, getenv: none, wantErr: "refused"},
		{name: "two arguments", args: []string{"a", "b"}, getenv: none, wantErr: "at most one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), tt.args, tt.getenv)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("run: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("run: got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
