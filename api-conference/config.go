package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// config is everything api-conference reads from its environment.
type config struct {
	HTTPAddr           string
	DatabaseURL        string
	CORSAllowedOrigins []string
	LogLevel           slog.Level
	LogFormat          string
	// OutboxRetention is how old an outbox row may grow before it is pruned (0: never).
	OutboxRetention time.Duration
	// TombstoneRetention is how long a deleted conference's tombstone is kept (0: forever);
	// a feed cursor older than the newest pruned tombstone gets 410 Gone.
	TombstoneRetention time.Duration
}

const (
	defaultHTTPAddr    = ":8000"
	defaultDatabaseURL = "postgres://postgres@localhost:5432/conferencego?sslmode=disable"
	defaultCORSOrigins = "http://localhost:3000,http://localhost:3001"
)

// configError lists every bad variable at once, on one line, so the process can say it all
// before it stops.
type configError []string

func (e configError) Error() string { return "configuration: " + strings.Join(e, "; ") }

// loadConfig reads and checks the environment. logToTerminal picks the default log format.
func loadConfig(getenv func(string) string, logToTerminal bool) (config, error) {
	var problems configError
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	cfg := config{
		HTTPAddr:    get("HTTP_ADDR", defaultHTTPAddr),
		DatabaseURL: get("DATABASE_URL", defaultDatabaseURL),
	}
	if err := checkListenAddr(cfg.HTTPAddr); err != nil {
		problems = append(problems, fmt.Sprintf("HTTP_ADDR=%q: %v", cfg.HTTPAddr, err))
	}
	if _, err := pgx.ParseConfig(cfg.DatabaseURL); err != nil {
		problems = append(problems, fmt.Sprintf("DATABASE_URL: not a Postgres URL: %v", err))
	}
	for _, origin := range strings.Split(get("CORS_ALLOWED_ORIGINS", defaultCORSOrigins), ",") {
		origin = strings.TrimSpace(origin)
		if origin == "" {
			continue
		}
		if err := checkOrigin(origin); err != nil {
			problems = append(problems, fmt.Sprintf("CORS_ALLOWED_ORIGINS: %q %v", origin, err))
			continue
		}
		cfg.CORSAllowedOrigins = append(cfg.CORSAllowedOrigins, origin)
	}
	retention := get("OUTBOX_RETENTION", "24h")
	if retention == "off" || retention == "0" {
		cfg.OutboxRetention = 0
	} else if d, err := time.ParseDuration(retention); err != nil || d < time.Minute {
		problems = append(problems, fmt.Sprintf("OUTBOX_RETENTION=%q: want a duration of at least 1m (like 24h), or off", retention))
	} else {
		cfg.OutboxRetention = d
	}
	tombstones := get("TOMBSTONE_RETENTION", "720h")
	if tombstones == "off" || tombstones == "0" {
		cfg.TombstoneRetention = 0
	} else if d, err := time.ParseDuration(tombstones); err != nil || d < time.Minute {
		problems = append(problems, fmt.Sprintf("TOMBSTONE_RETENTION=%q: want a duration of at least 1m (like 720h), or off", tombstones))
	} else {
		cfg.TombstoneRetention = d
	}
	level := get("LOG_LEVEL", "info")
	if err := cfg.LogLevel.UnmarshalText([]byte(level)); err != nil {
		problems = append(problems, fmt.Sprintf("LOG_LEVEL=%q: want debug, info, warn or error", level))
	}
	defFormat := "json"
	if logToTerminal {
		defFormat = "text"
	}
	cfg.LogFormat = strings.ToLower(get("LOG_FORMAT", defFormat))
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		problems = append(problems, fmt.Sprintf("LOG_FORMAT=%q: want text or json", cfg.LogFormat))
	}
	if len(problems) > 0 {
		return config{}, problems
	}
	return cfg, nil
}

func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port or :port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func checkOrigin(origin string) error {
	if origin == "*" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("is not an origin like https://example.com or *")
	}
	return nil
}

// redactURL hides the password of a database URL for logging.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

func newLogger(w io.Writer, cfg config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
