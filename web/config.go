package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// config is everything the web program reads from its environment.
type config struct {
	HTTPAddr string
	// The services as the browser reaches them: the page calls them directly, so these are
	// URLs on the user's machine (published ports), not the names of a compose network.
	ConferenceURL, AttendeeURL, SyncerURL string
	LogLevel                              slog.Level
	LogFormat                             string
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
		HTTPAddr:      get("HTTP_ADDR", ":3000"),
		ConferenceURL: strings.TrimRight(get("CONFERENCE_URL", "http://localhost:8000"), "/"),
		AttendeeURL:   strings.TrimRight(get("ATTENDEE_URL", "http://localhost:8001"), "/"),
		SyncerURL:     strings.TrimRight(get("SYNCER_URL", "http://localhost:8002"), "/"),
	}
	if _, port, err := net.SplitHostPort(cfg.HTTPAddr); err != nil {
		bad("HTTP_ADDR=%q: want host:port or :port", cfg.HTTPAddr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("HTTP_ADDR=%q: port is not a number from 0 to 65535", cfg.HTTPAddr)
	}
	for _, v := range []struct{ name, url string }{
		{"CONFERENCE_URL", cfg.ConferenceURL}, {"ATTENDEE_URL", cfg.AttendeeURL}, {"SYNCER_URL", cfg.SyncerURL},
	} {
		// An origin and nothing else: the page appends the API's paths, and the URL goes
		// into the Content-Security-Policy as a source the page may connect to.
		u, err := url.Parse(v.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			bad("%s=%q: want the service's http(s) origin as the browser reaches it, like http://localhost:8000", v.name, v.url)
		}
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

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
