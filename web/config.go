package main

import (
	"net/url"
	"strings"

	"conferencego/service/envconf"
	"conferencego/service/logging"
)

// config is everything the web program reads from its environment.
type config struct {
	HTTPAddr string
	// The services as the browser reaches them: the page calls them directly, so these are
	// URLs on the user's machine (published ports), not the names of a compose network.
	ConferenceURL, AttendeeURL, SyncerURL string
	logging.Config
}

// loadConfig reads and checks the environment, naming every bad variable at once.
// logToTerminal picks the default log format.
func loadConfig(getenv func(string) string, logToTerminal bool) (config, error) {
	e, get := envconf.New(getenv)
	cfg := config{
		HTTPAddr:      e.ListenAddr(get("HTTP_ADDR", ":3000")),
		ConferenceURL: origin(e, get("CONFERENCE_URL", "http://localhost:8000")),
		AttendeeURL:   origin(e, get("ATTENDEE_URL", "http://localhost:8001")),
		SyncerURL:     origin(e, get("SYNCER_URL", "http://localhost:8002")),
		Config:        e.Logging(get("LOG_LEVEL", "info"), get("LOG_FORMAT", logging.DefaultFormat(logToTerminal))),
	}
	return envconf.Result(e, cfg)
}

// origin checks a service's URL: an origin and nothing else, because the page appends the
// API's paths, and the URL goes into the Content-Security-Policy as a source the page may
// connect to.
func origin(e *envconf.Env, v envconf.Var) string {
	s := strings.TrimRight(v.Value, "/")
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		e.Bad("%s=%q: want the service's http(s) origin as the browser reaches it, like http://localhost:8000", v.Name, v.Value)
	}
	return s
}
