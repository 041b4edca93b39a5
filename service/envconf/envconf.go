// Package envconf reads a process's configuration from its environment and checks it, and
// collects every problem so that the process can refuse to start with one line that names
// each bad variable at once.
//
// A service reads each variable through the get that New returns, called in its own
// loadConfig, so that the names it reads stand as literals in its own package (docker's
// compose test lists them from there):
//
//	e, get := envconf.New(getenv)
//	svc := e.HTTPService(get("HTTP_ADDR", ":8000"), get("DATABASE_URL", envconf.DefaultDatabaseURL), ...)
//	...
//	return envconf.Result(e, cfg)
//
// It is not github.com/caarlos0/env: that library reports a bad value under the Go field's
// name rather than the variable's, reads a map rather than a getenv function, does not trim
// values, and has none of these range checks, which would remain here anyway.
package envconf

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"conferencego/service/logging"
)

// Var is one variable as read: its name, and its value or the default.
type Var struct {
	Name  string
	Value string
}

// Env reads variables through getenv and collects the problems found in their values.
type Env struct {
	getenv   func(string) string
	problems Problems
}

// New returns an Env reading through getenv (os.Getenv, or a test's map), and its Get.
func New(getenv func(string) string) (*Env, func(name, def string) Var) {
	e := &Env{getenv: getenv}
	return e, e.Get
}

// The defaults of the variables every service reads: the local development setup (README).
const (
	DefaultDatabaseURL = "postgres://postgres@localhost:5432/conferencego?sslmode=disable"
	DefaultCORSOrigins = "http://localhost:3000,http://localhost:3001"
)

// HTTPService is the configuration both HTTP services share.
type HTTPService struct {
	HTTPAddr           string
	DatabaseURL        string
	CORSAllowedOrigins []string
}

// HTTPService checks the variables an HTTP service reads: the address it listens on, its
// database and the origins whose pages may call it.
func (e *Env) HTTPService(addr, database, origins Var) HTTPService {
	return HTTPService{HTTPAddr: e.ListenAddr(addr), DatabaseURL: e.PostgresURL(database), CORSAllowedOrigins: e.Origins(origins)}
}

// Logging checks LOG_LEVEL and LOG_FORMAT (text or json).
func (e *Env) Logging(level, format Var) logging.Config {
	return logging.Config{LogLevel: e.LogLevel(level), LogFormat: e.Choice(format, logging.FormatText, logging.FormatJSON)}
}

// Get reads name, trimmed of surrounding spaces, or def when it is unset or blank.
func (e *Env) Get(name, def string) Var {
	if v := strings.TrimSpace(e.getenv(name)); v != "" {
		return Var{Name: name, Value: v}
	}
	return Var{Name: name, Value: def}
}

// Bad records a problem; the message starts with the variable's name.
func (e *Env) Bad(format string, args ...any) {
	e.problems = append(e.problems, fmt.Sprintf(format, args...))
}

// Err returns every problem recorded, or nil.
func (e *Env) Err() error {
	if len(e.problems) == 0 {
		return nil
	}
	return e.problems
}

// Result returns cfg, or the zero value and every problem e recorded: a process starts with
// the whole of its configuration right or not at all.
func Result[C any](e *Env, cfg C) (C, error) {
	if err := e.Err(); err != nil {
		var zero C
		return zero, err
	}
	return cfg, nil
}

// Problems lists every bad variable at once, on one line, so the process can say it all
// before it stops.
type Problems []string

func (p Problems) Error() string { return "configuration: " + strings.Join(p, "; ") }

// ListenAddr checks a host:port or :port to listen on.
func (e *Env) ListenAddr(v Var) string {
	_, port, err := net.SplitHostPort(v.Value)
	if err != nil {
		e.Bad("%s=%q: want host:port or :port", v.Name, v.Value)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		e.Bad("%s=%q: port %q is not a number from 0 to 65535", v.Name, v.Value, port)
	}
	return v.Value
}

// PostgresURL checks a URL or keyword/value string that pgx can connect with. The message
// does not repeat the value, which may hold a password.
func (e *Env) PostgresURL(v Var) string {
	if _, err := pgx.ParseConfig(v.Value); err != nil {
		e.Bad("%s: not a Postgres URL: %v", v.Name, err)
	}
	return v.Value
}

// Origins reads a comma-separated list of browser origins (https://example.com) or "*".
func (e *Env) Origins(v Var) []string {
	var out []string
	for _, origin := range strings.Split(v.Value, ",") {
		origin = strings.TrimSpace(origin)
		if origin == "" {
			continue
		}
		if origin != "*" {
			u, err := url.Parse(origin)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
				e.Bad("%s: %q is not an origin like https://example.com or *", v.Name, origin)
				continue
			}
		}
		out = append(out, origin)
	}
	return out
}

// Duration reads a Go duration of at least min; like is an example for the message.
func (e *Env) Duration(v Var, min time.Duration, like string) time.Duration {
	d, err := time.ParseDuration(v.Value)
	if err != nil || d < min {
		e.Bad("%s=%q: want a duration of at least %s, like %s", v.Name, v.Value, short(min), like)
		return 0
	}
	return d
}

// DurationOrOff is Duration where "off" (or "0") turns the feature off: zero.
func (e *Env) DurationOrOff(v Var, min time.Duration, like string) time.Duration {
	if v.Value == "off" || v.Value == "0" {
		return 0
	}
	d, err := time.ParseDuration(v.Value)
	if err != nil || d < min {
		e.Bad("%s=%q: want a duration of at least %s (like %s), or off", v.Name, v.Value, short(min), like)
		return 0
	}
	return d
}

// Int reads a whole number from min to max.
func (e *Env) Int(v Var, min, max int64) int64 {
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil || n < min || n > max {
		e.Bad("%s=%q: want a whole number from %d to %d", v.Name, v.Value, min, max)
		return 0
	}
	return n
}

// Choice reads one of choices, case-insensitively; it returns the value in lower case.
func (e *Env) Choice(v Var, choices ...string) string {
	s := strings.ToLower(v.Value)
	for _, c := range choices {
		if s == c {
			return s
		}
	}
	e.Bad("%s=%q: want %s", v.Name, s, orList(choices))
	return s
}

// LogLevel reads a slog level: debug, info, warn or error.
func (e *Env) LogLevel(v Var) slog.Level {
	var level slog.Level
	if err := level.UnmarshalText([]byte(v.Value)); err != nil {
		e.Bad("%s=%q: want debug, info, warn or error", v.Name, v.Value)
	}
	return level
}

// orList writes choices as "a, b or c".
func orList(choices []string) string {
	if len(choices) < 2 {
		return strings.Join(choices, "")
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}

// short writes d as a person would: 1m rather than 1m0s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
