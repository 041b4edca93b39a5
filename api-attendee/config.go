package main

import (
	"strings"
	"time"

	"conferencego/service/envconf"
	"conferencego/service/logging"
	"conferencego/syncer/changeevent"
	"conferencego/syncer/redisconn"
)

// config is everything api-attendee reads from its environment.
type config struct {
	envconf.HTTPService
	logging.Config

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

// loadConfig reads and checks the environment: the variables of every HTTP service, the sync
// mode and its token, and Redis and the stream consumer for push mode. logToTerminal picks the
// default log format.
func loadConfig(getenv func(string) string, logToTerminal bool) (config, error) {
	e, get := envconf.New(getenv)
	cfg := config{
		HTTPService: e.HTTPService(get("HTTP_ADDR", ":8001"), get("DATABASE_URL", envconf.DefaultDatabaseURL), get("CORS_ALLOWED_ORIGINS", envconf.DefaultCORSOrigins)),
		Config:      e.Logging(get("LOG_LEVEL", "info"), get("LOG_FORMAT", logging.DefaultFormat(logToTerminal))),
		SyncMode:    e.Choice(get("SYNC_MODE", "push"), "push", "pull"),
		RedisURL:    get("REDIS_URL", "redis://localhost:6379/0").Value,
		RedisMode:   strings.ToLower(get("REDIS_MODE", redisconn.ModeStandalone).Value),
	}
	// The token is taken as is: trimming could make two different secrets equal.
	if cfg.SyncToken = getenv("SYNC_TOKEN"); cfg.SyncToken != strings.TrimSpace(cfg.SyncToken) {
		e.Bad("SYNC_TOKEN: has surrounding spaces; a client could not send it")
	}
	if err := cfg.redis().Validate(); err != nil {
		e.Bad("%v", err)
	}
	loadConsumer(e, get, &cfg)
	return envconf.Result(e, cfg)
}

// loadConsumer reads the stream consumer's settings.
func loadConsumer(e *envconf.Env, get func(name, def string) envconf.Var, cfg *config) {
	stream, group := get("SYNC_STREAM", changeevent.DefaultStream), get("SYNC_GROUP", changeevent.DefaultGroup)
	for _, v := range []envconf.Var{stream, group} {
		if len(v.Value) > 200 || strings.ContainsAny(v.Value, " \t\r\n") {
			e.Bad("%s=%q: want a name of at most 200 characters without spaces", v.Name, v.Value)
		}
	}
	if err := redisconn.ValidateStream(stream.Value); err != nil {
		e.Bad("SYNC_STREAM=%q: %v", stream.Value, err)
	}
	cfg.Stream, cfg.Group = stream.Value, group.Value
	cfg.BatchSize = int(e.Int(get("SYNC_BATCH_SIZE", "100"), 1, 10000))
	cfg.ClaimMinIdle = e.Duration(get("SYNC_CLAIM_IDLE", "30s"), 100*time.Millisecond, "30s")
	cfg.MaxDeliveries = e.Int(get("SYNC_MAX_DELIVERIES", "5"), 1, 1000)
}

// redis is the Redis part of the configuration.
func (c config) redis() redisconn.Config { return redisconn.Config{Mode: c.RedisMode, URL: c.RedisURL} }

// redactURL hides the passwords of a database or Redis URL for logging: the userinfo's and a
// password= parameter's (a Sentinel URL carries the primary's there).
func redactURL(raw string) string { return redisconn.Redacted(raw) }
