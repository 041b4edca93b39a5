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

	"conferencego/syncer/changeevent"
	"conferencego/syncer/redisconn"
)

// config is everything api-attendee reads from its environment.
type config struct {
	HTTPAddr           string
	DatabaseURL        string
	CORSAllowedOrigins []string
	LogLevel           slog.Level
	LogFormat          string

	// SyncMode is push (consume the Redis stream) or pull (the syncer calls /internal/…).
	SyncMode string
	// SyncToken guards /internal/…; empty turns it off.
	SyncToken string
	// RedisURL and the consumer's settings matter in push mode only.
	RedisURL      string
	RedisMode     string
	Stream        string
	Group         string
	BatchSize     int
	ClaimMinIdle  time.Duration
	MaxDeliveries int64
}

const (
	defaultHTTPAddr    = ":8001"
	defaultDatabaseURL = "postgres://postgres@localhost:5432/conferencego?sslmode=disable"
	defaultRedisURL    = "redis://localhost:6379/0"
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
	cfg.SyncMode = strings.ToLower(get("SYNC_MODE", "push"))
	if cfg.SyncMode != "push" && cfg.SyncMode != "pull" {
		problems = append(problems, fmt.Sprintf("SYNC_MODE=%q: want push or pull", cfg.SyncMode))
	}
	// The token is taken as is: trimming could make two different secrets equal.
	cfg.SyncToken = getenv("SYNC_TOKEN")
	if cfg.SyncToken != strings.TrimSpace(cfg.SyncToken) {
		problems = append(problems, "SYNC_TOKEN: has surrounding spaces; a client could not send it")
	}
	cfg.RedisURL = get("REDIS_URL", defaultRedisURL)
	cfg.RedisMode = strings.ToLower(get("REDIS_MODE", redisconn.ModeStandalone))
	if err := cfg.redis().Validate(); err != nil {
		problems = append(problems, err.Error())
	}
	cfg.Stream = get("SYNC_STREAM", changeevent.DefaultStream)
	cfg.Group = get("SYNC_GROUP", changeevent.DefaultGroup)
	for _, nv := range [][2]string{{"SYNC_STREAM", cfg.Stream}, {"SYNC_GROUP", cfg.Group}} {
		name, v := nv[0], nv[1]
		if len(v) > 200 || strings.ContainsAny(v, " \t\r\n") {
			problems = append(problems, fmt.Sprintf("%s=%q: want a name of at most 200 characters without spaces", name, v))
		}
	}
	if err := redisconn.ValidateStream(cfg.Stream); err != nil {
		problems = append(problems, fmt.Sprintf("SYNC_STREAM=%q: %v", cfg.Stream, err))
	}
	if n, err := strconv.Atoi(get("SYNC_BATCH_SIZE", "100")); err != nil || n < 1 || n > 10000 {
		problems = append(problems, fmt.Sprintf("SYNC_BATCH_SIZE=%q: want a whole number from 1 to 10000", getenv("SYNC_BATCH_SIZE")))
	} else {
		cfg.BatchSize = n
	}
	if d, err := time.ParseDuration(get("SYNC_CLAIM_IDLE", "30s")); err != nil || d < 100*time.Millisecond {
		problems = append(problems, fmt.Sprintf("SYNC_CLAIM_IDLE=%q: want a duration of at least 100ms, like 30s", getenv("SYNC_CLAIM_IDLE")))
	} else {
		cfg.ClaimMinIdle = d
	}
	if n, err := strconv.ParseInt(get("SYNC_MAX_DELIVERIES", "5"), 10, 64); err != nil || n < 1 || n > 1000 {
		problems = append(problems, fmt.Sprintf("SYNC_MAX_DELIVERIES=%q: want a whole number from 1 to 1000", getenv("SYNC_MAX_DELIVERIES")))
	} else {
		cfg.MaxDeliveries = n
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

// redis is the Redis part of the configuration.
func (c config) redis() redisconn.Config { return redisconn.Config{Mode: c.RedisMode, URL: c.RedisURL} }

// redactURL hides the passwords of a database or Redis URL for logging: the userinfo's and a
// password= parameter's (a Sentinel URL carries the primary's there).
func redactURL(raw string) string { return redisconn.Redacted(raw) }

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
