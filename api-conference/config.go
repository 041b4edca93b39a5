package main

import (
	"net/url"
	"time"

	"conferencego/api-conference/internal/postgres"
	"conferencego/service/envconf"
	"conferencego/service/logging"
	"conferencego/syncer/changeevent"
)

// config is everything api-conference reads from its environment.
type config struct {
	envconf.HTTPService
	logging.Config
	// OutboxRetention is how old an outbox row may grow before it is pruned (0: never).
	OutboxRetention time.Duration
	// TombstoneRetention is how long a deleted conference's tombstone is kept (0: forever);
	// a feed cursor older than the newest pruned tombstone gets 410 Gone.
	TombstoneRetention time.Duration
	// OutboxNotify is how a write tells the relay that the outbox has rows.
	OutboxNotify postgres.NotifyMode
	// OutboxTransport is how a write's event reaches the relay: an outbox row, or a
	// logical-decoding message kept by the replication slot OutboxSlot.
	OutboxTransport postgres.Transport
	OutboxSlot      string
}

// loadConfig reads and checks the environment: the variables of every HTTP service, and how
// long the outbox and the tombstones are kept, and how events reach the relay. logToTerminal
// picks the default log format.
func loadConfig(getenv func(string) string, logToTerminal bool) (config, error) {
	e, get := envconf.New(getenv)
	cfg := config{
		HTTPService:        e.HTTPService(get("HTTP_ADDR", ":8000"), get("DATABASE_URL", envconf.DefaultDatabaseURL), get("CORS_ALLOWED_ORIGINS", envconf.DefaultCORSOrigins)),
		Config:             e.Logging(get("LOG_LEVEL", "info"), get("LOG_FORMAT", logging.DefaultFormat(logToTerminal))),
		OutboxRetention:    e.DurationOrOff(get("OUTBOX_RETENTION", "24h"), time.Minute, "24h"),
		TombstoneRetention: e.DurationOrOff(get("TOMBSTONE_RETENTION", "720h"), time.Minute, "720h"),
		OutboxNotify:       postgres.NotifyMode(e.Choice(get("OUTBOX_NOTIFY", string(postgres.NotifyAfter)), postgres.NotifyModes...)),
		OutboxTransport:    postgres.Transport(e.Choice(get("OUTBOX_TRANSPORT", string(postgres.TransportTable)), postgres.Transports...)),
		OutboxSlot:         get("OUTBOX_SLOT", changeevent.DefaultSlot).Value,
	}
	if !changeevent.ValidSlot(cfg.OutboxSlot) {
		e.Bad("OUTBOX_SLOT=%q: want a replication slot name of 1 to 63 lower-case letters, digits or underscores", cfg.OutboxSlot)
	}
	if cfg.OutboxTransport == postgres.TransportLogical && cfg.OutboxNotify == postgres.NotifyCommit {
		// Refused, not ignored: whoever set it expects a notification in every write, which the
		// relay, reading the slot, would never wait for.
		e.Bad("OUTBOX_NOTIFY=commit: with OUTBOX_TRANSPORT=logical there is no outbox row to notify about; use after or off (both mean none)")
	}
	if cfg.OutboxTransport == postgres.TransportLogical {
		cfg.OutboxNotify = postgres.NotifyOff // the start's log line says so
	}
	return envconf.Result(e, cfg)
}

// redactURL hides the password of a database URL for logging.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}
