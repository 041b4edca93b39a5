package main

import (
	"log/slog"
	"net/url"
	"time"

	"conferencego/service/envconf"
	"conferencego/service/logging"
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

// configError is what loadConfig refuses an environment with: every bad variable, on one line.
type configError = envconf.Problems

// loadConfig reads and checks the environment, and names every bad variable at once.
// logToTerminal picks the default log format.
func loadConfig(getenv func(string) string, logToTerminal bool) (config, error) {
	e := envconf.New(getenv)
	get := e.Get
	cfg := config{
		HTTPAddr:           e.ListenAddr(get("HTTP_ADDR", defaultHTTPAddr)),
		DatabaseURL:        e.PostgresURL(get("DATABASE_URL", defaultDatabaseURL)),
		CORSAllowedOrigins: e.Origins(get("CORS_ALLOWED_ORIGINS", defaultCORSOrigins)),
		OutboxRetention:    e.DurationOrOff(get("OUTBOX_RETENTION", "24h"), time.Minute, "24h"),
		TombstoneRetention: e.DurationOrOff(get("TOMBSTONE_RETENTION", "720h"), time.Minute, "720h"),
		LogLevel:           e.LogLevel(get("LOG_LEVEL", "info")),
		LogFormat:          e.Choice(get("LOG_FORMAT", logging.DefaultFormat(logToTerminal)), logging.FormatText, logging.FormatJSON),
	}
	if err := e.Err(); err != nil {
		return config{}, err
	}
	return cfg, nil
}

// redactURL hides the password of a database URL for logging.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}
