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
	"conferencego/syncer/internal/poller"
	"conferencego/syncer/redisconn"
)

// Modes of the syncer.
const (
	modePush = "push"
	modePull = "pull"
)

// config is everything the syncer reads from its environment.
type config struct {
	HTTPAddr          string
	Mode              string
	DatabaseURL       string
	RedisURL          string
	RedisMode         string
	Stream            string
	StreamMaxLen      int64
	PullMode          string
	PollInterval      time.Duration
	ReconcileInterval time.Duration
	WaitReplicas      int
	WaitTimeout       time.Duration
	ConferenceURL     string
	AttendeeURL       string
	Token             string
	Pprof             bool     // SYNC_PPROF=on serves /debug/pprof on HTTP_ADDR
	CORSOrigins       []string // CORS_ALLOWED_ORIGINS: the pages that may read /status (status.go)
	LogLevel          slog.Level
	LogFormat         string
}

// configError lists every bad variable at once, on one line.
type configError []string

func (e configError) Error() string { return "configuration: " + strings.Join(e, "; ") }

func loadConfig(getenv func(string) string, logToTerminal bool) (config, error) {
	var problems configError
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	cfg := config{
		HTTPAddr:      get("HTTP_ADDR", ":8002"),
		Mode:          strings.ToLower(get("SYNC_MODE", modePush)),
		DatabaseURL:   get("DATABASE_URL", "postgres://postgres@localhost:5432/conferencego?sslmode=disable"),
		RedisURL:      get("REDIS_URL", "redis://localhost:6379/0"),
		RedisMode:     strings.ToLower(get("REDIS_MODE", redisconn.ModeStandalone)),
		Stream:        get("SYNC_STREAM", changeevent.DefaultStream),
		ConferenceURL: strings.TrimRight(get("CONFERENCE_URL", "http://localhost:8000"), "/"),
		AttendeeURL:   strings.TrimRight(get("ATTENDEE_URL", "http://localhost:8001"), "/"),
		Token:         getenv("SYNC_TOKEN"),
	}
	if _, port, err := net.SplitHostPort(cfg.HTTPAddr); err != nil {
		bad("HTTP_ADDR=%q: want host:port or :port", cfg.HTTPAddr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("HTTP_ADDR=%q: port is not a number from 0 to 65535", cfg.HTTPAddr)
	}
	switch cfg.Mode {
	case modePush:
		if _, err := pgx.ParseConfig(cfg.DatabaseURL); err != nil {
			bad("DATABASE_URL: not a Postgres URL: %v", err)
		}
		if err := cfg.redis().Validate(); err != nil {
			bad("%v", err)
		}
	case modePull:
		if cfg.Token == "" {
			bad("SYNC_TOKEN: pull mode needs it to call api-attendee's internal endpoint")
		}
	default:
		bad("SYNC_MODE=%q: want push or pull", cfg.Mode)
	}
	if cfg.Stream == "" || strings.ContainsAny(cfg.Stream, " \t\r\n") || len(cfg.Stream) > 200 {
		bad("SYNC_STREAM=%q: want a stream name without spaces", cfg.Stream)
	} else if err := redisconn.ValidateStream(cfg.Stream); err != nil {
		bad("SYNC_STREAM=%q: %v", cfg.Stream, err)
	}
	maxLen := get("SYNC_STREAM_MAXLEN", "1000000")
	n, err := strconv.ParseInt(maxLen, 10, 64)
	if err != nil || n < 1000 {
		bad("SYNC_STREAM_MAXLEN=%q: want a whole number of at least 1000", maxLen)
	}
	cfg.StreamMaxLen = n
	waitReplicas := get("SYNC_WAIT_REPLICAS", "0")
	if cfg.WaitReplicas, err = strconv.Atoi(waitReplicas); err != nil || cfg.WaitReplicas < 0 || cfg.WaitReplicas > 100 {
		bad("SYNC_WAIT_REPLICAS=%q: want how many Redis replicas must hold a batch before its outbox rows go, 0 (off) to 100", waitReplicas)
	}
	if cfg.WaitTimeout, err = parseDuration(get("SYNC_WAIT_TIMEOUT", "1s"), false); err != nil {
		bad("SYNC_WAIT_TIMEOUT: %v", err)
	}
	cfg.PullMode = strings.ToLower(get("SYNC_PULL", poller.ModeFeed))
	if cfg.PullMode != poller.ModeFeed && cfg.PullMode != poller.ModeList {
		bad("SYNC_PULL=%q: want feed (follow the change feed) or list (poll the whole list, the seed's way)", cfg.PullMode)
	}
	if cfg.PollInterval, err = parseDuration(get("SYNC_POLL_INTERVAL", "5s"), false); err != nil {
		bad("SYNC_POLL_INTERVAL: %v", err)
	}
	if cfg.ReconcileInterval, err = parseDuration(get("SYNC_RECONCILE_INTERVAL", "1h"), true); err != nil {
		bad("SYNC_RECONCILE_INTERVAL: %v", err)
	}
	for name, u := range map[string]string{"CONFERENCE_URL": cfg.ConferenceURL, "ATTENDEE_URL": cfg.AttendeeURL} {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad("%s=%q: want an http(s) URL like http://localhost:8000", name, u)
		}
	}
	if cfg.CORSOrigins, err = parseOrigins(get("CORS_ALLOWED_ORIGINS", defaultCORSOrigins)); err != nil {
		bad("CORS_ALLOWED_ORIGINS: %v", err)
	}
	switch pprofSetting := strings.ToLower(get("SYNC_PPROF", "off")); pprofSetting {
	case "on":
		cfg.Pprof = true
	case "off":
	default:
		bad("SYNC_PPROF=%q: want on or off", pprofSetting)
	}
	level := get("LOG_LEVEL", "info")
	if err := cfg.LogLevel.UnmarshalText([]byte(level)); err != nil {
		bad("LOG_LEVEL=%q: want debug, info, warn or error", level)
	}
	defFormat := "json"
	if logToTerminal {
		defFormat = "text"
	}
	if cfg.LogFormat = strings.ToLower(get("LOG_FORMAT", defFormat)); cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		bad("LOG_FORMAT=%q: want text or json", cfg.LogFormat)
	}
	if len(problems) > 0 {
		return config{}, problems
	}
	return cfg, nil
}

// parseDuration reads a Go duration of at least 10ms; with offOK, "off" or "0" mean zero.
func parseDuration(s string, offOK bool) (time.Duration, error) {
	if offOK && (s == "off" || s == "0") {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration like 5s or 500ms", s)
	}
	if d < 10*time.Millisecond {
		return 0, fmt.Errorf("%q is below 10ms", s)
	}
	return d, nil
}

// redis is the Redis part of the configuration.
func (c config) redis() redisconn.Config { return redisconn.Config{Mode: c.RedisMode, URL: c.RedisURL} }

// redactURL hides the passwords of a URL for logging: the userinfo's and a password=
// parameter's, where a Sentinel REDIS_URL keeps the primary's and a DATABASE_URL may keep one.
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
