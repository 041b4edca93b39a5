package main

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"conferencego/service/envconf"
	"conferencego/service/logging"

	"conferencego/syncer/changeevent"
	"conferencego/syncer/internal/poller"
	"conferencego/syncer/internal/relay"
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
	OutboxPoll        time.Duration // SYNC_OUTBOX_POLL: 0 listens for notifications
	RelayLinger       time.Duration // SYNC_RELAY_LINGER: 0 claims as soon as woken
	OutboxTransport   string        // SYNC_OUTBOX_TRANSPORT: table or logical
	Slot              string        // SYNC_SLOT: the replication slot of the logical transport
	ConferenceURL     string
	AttendeeURL       string
	Token             string
	Pprof             bool     // SYNC_PPROF=on serves /debug/pprof on HTTP_ADDR
	CORSOrigins       []string // CORS_ALLOWED_ORIGINS: the pages that may read /status (status.go)
	logging.Config
}

// minInterval is the shortest poll, reconcile or wait the syncer accepts: shorter would only
// spin.
const minInterval = 10 * time.Millisecond

// loadConfig reads and checks the environment, and names every bad variable at once: the
// mode, what that mode talks to, and the loop's intervals. logToTerminal picks the default log
// format.
func loadConfig(getenv func(string) string, logToTerminal bool) (config, error) {
	e, get := envconf.New(getenv)
	database := get("DATABASE_URL", envconf.DefaultDatabaseURL)
	conferenceURL, attendeeURL := get("CONFERENCE_URL", "http://localhost:8000"), get("ATTENDEE_URL", "http://localhost:8001")
	cfg := config{
		HTTPAddr:          e.ListenAddr(get("HTTP_ADDR", ":8002")),
		Config:            e.Logging(get("LOG_LEVEL", "info"), get("LOG_FORMAT", logging.DefaultFormat(logToTerminal))),
		Mode:              e.Choice(get("SYNC_MODE", modePush), modePush, modePull),
		DatabaseURL:       database.Value,
		RedisURL:          get("REDIS_URL", "redis://localhost:6379/0").Value,
		RedisMode:         strings.ToLower(get("REDIS_MODE", redisconn.ModeStandalone).Value),
		Stream:            get("SYNC_STREAM", changeevent.DefaultStream).Value,
		WaitTimeout:       e.Duration(get("SYNC_WAIT_TIMEOUT", "1s"), minInterval, "1s"),
		PollInterval:      e.Duration(get("SYNC_POLL_INTERVAL", "5s"), minInterval, "5s"),
		ReconcileInterval: e.DurationOrOff(get("SYNC_RECONCILE_INTERVAL", "1h"), minInterval, "1h"),
		ConferenceURL:     strings.TrimRight(conferenceURL.Value, "/"),
		AttendeeURL:       strings.TrimRight(attendeeURL.Value, "/"),
		Token:             getenv("SYNC_TOKEN"),
		CORSOrigins:       e.Origins(get("CORS_ALLOWED_ORIGINS", envconf.DefaultCORSOrigins)),
	}
	switch cfg.Mode {
	case modePush:
		e.PostgresURL(database)
		if err := cfg.redis().Validate(); err != nil {
			e.Bad("%v", err)
		}
	case modePull:
		if cfg.Token == "" {
			e.Bad("SYNC_TOKEN: pull mode needs it to call api-attendee's internal endpoint")
		}
	}
	if cfg.Stream == "" || strings.ContainsAny(cfg.Stream, " \t\r\n") || len(cfg.Stream) > 200 {
		e.Bad("SYNC_STREAM=%q: want a stream name without spaces", cfg.Stream)
	} else if err := redisconn.ValidateStream(cfg.Stream); err != nil {
		e.Bad("SYNC_STREAM=%q: %v", cfg.Stream, err)
	}
	loadRelay(e, get, &cfg)
	if cfg.PullMode = strings.ToLower(get("SYNC_PULL", poller.ModeFeed).Value); cfg.PullMode != poller.ModeFeed && cfg.PullMode != poller.ModeList {
		e.Bad("SYNC_PULL=%q: want feed (follow the change feed) or list (poll the whole list, the seed's way)", cfg.PullMode)
	}
	for _, v := range []envconf.Var{conferenceURL, attendeeURL} {
		if p, err := url.Parse(strings.TrimRight(v.Value, "/")); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			e.Bad("%s=%q: want an http(s) URL like http://localhost:8000", v.Name, strings.TrimRight(v.Value, "/"))
		}
	}
	cfg.Pprof = e.Choice(get("SYNC_PPROF", "off"), "on", "off") == "on"
	return envconf.Result(e, cfg)
}

// loadRelay reads the push relay's stream length, replication wait, and how it learns of new
// outbox rows: notifications, or polling (SYNC_OUTBOX_POLL, down to 1ms: an idle poll is one
// index look), and how long it lingers for more when busy.
func loadRelay(e *envconf.Env, get func(name, def string) envconf.Var, cfg *config) {
	poll, linger := get("SYNC_OUTBOX_POLL", "off"), get("SYNC_RELAY_LINGER", "off")
	cfg.OutboxTransport = e.Choice(get("SYNC_OUTBOX_TRANSPORT", relay.TransportTable), relay.TransportTable, relay.TransportLogical)
	if cfg.Slot = get("SYNC_SLOT", changeevent.DefaultSlot).Value; !changeevent.ValidSlot(cfg.Slot) {
		e.Bad("SYNC_SLOT=%q: want a replication slot name of 1 to 63 lower-case letters, digits or underscores", cfg.Slot)
	}
	if cfg.OutboxTransport == relay.TransportLogical && poll.Value != "off" && poll.Value != "" {
		e.Bad("SYNC_OUTBOX_POLL=%q: the logical transport reads a replication slot, which needs no polling; leave it off", poll.Value)
	}
	if cfg.OutboxPoll = e.DurationOrOff(poll, time.Millisecond, "2ms"); cfg.OutboxPoll > time.Minute {
		e.Bad("SYNC_OUTBOX_POLL=%q: want a duration from 1ms to 1m, or off (listen for notifications)", poll.Value)
	}
	if cfg.RelayLinger = e.DurationOrOff(linger, time.Microsecond, "500us"); cfg.RelayLinger > time.Second {
		e.Bad("SYNC_RELAY_LINGER=%q: want a duration up to 1s, or off", linger.Value)
	}
	maxLen := get("SYNC_STREAM_MAXLEN", "1000000")
	n, err := strconv.ParseInt(maxLen.Value, 10, 64)
	if err != nil || n < 1000 {
		e.Bad("SYNC_STREAM_MAXLEN=%q: want a whole number of at least 1000", maxLen.Value)
	}
	cfg.StreamMaxLen = n
	waitReplicas := get("SYNC_WAIT_REPLICAS", "0")
	if cfg.WaitReplicas, err = strconv.Atoi(waitReplicas.Value); err != nil || cfg.WaitReplicas < 0 || cfg.WaitReplicas > 100 {
		e.Bad("SYNC_WAIT_REPLICAS=%q: want how many Redis replicas must hold a batch before its outbox rows go, 0 (off) to 100", waitReplicas.Value)
	}
}

// redis is the Redis part of the configuration.
func (c config) redis() redisconn.Config { return redisconn.Config{Mode: c.RedisMode, URL: c.RedisURL} }

// redactURL hides the passwords of a URL for logging: the userinfo's and a password=
// parameter's, where a Sentinel REDIS_URL keeps the primary's and a DATABASE_URL may keep one.
func redactURL(raw string) string { return redisconn.Redacted(raw) }
