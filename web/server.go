package main

import (
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// static is the page: plain HTML, CSS and JavaScript modules, and the vendored chart library.
// There is no build step; what is in the repository is what the browser gets.
//
//go:embed static
var static embed.FS

// pageConfig is what the page learns at /config.json: where the services are.
type pageConfig struct {
	ConferenceURL string `json:"conference_url"`
	AttendeeURL   string `json:"attendee_url"`
	SyncerURL     string `json:"syncer_url"`
}

// newHandler serves the page, its configuration and the health routes.
func newHandler(log *slog.Logger, cfg config) http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	pc := pageConfig{ConferenceURL: cfg.ConferenceURL, AttendeeURL: cfg.AttendeeURL, SyncerURL: cfg.SyncerURL}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, map[string]string{"status": "ok"}) })
	// Ready as soon as it serves: the page has nothing to wait for, and shows by itself which
	// service it cannot reach.
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, map[string]string{"status": "ready"}) })
	mux.HandleFunc("GET /config.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, pc)
	})
	// The page names no icon (index.html says href="data:,"), but browsers ask for one on
	// any other document: an empty answer rather than a 404 in every console.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("GET /", http.FileServerFS(files))
	csp := strings.Join([]string{
		"default-src 'self'",
		"connect-src 'self' " + strings.Join([]string{cfg.ConferenceURL, cfg.AttendeeURL, cfg.SyncerURL}, " "),
		"img-src 'self' data:", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'",
	}, "; ")
	return logRequests(log, securityHeaders(csp, mux))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// securityHeaders lets the page run only its own scripts and talk only to the three services.
func securityHeaders(csp string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		log.DebugContext(r.Context(), "request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "took", time.Since(start))
	})
}
