// Package redisconn gives the syncer and api-attendee their Redis client, whichever way Redis is
// deployed: one server, a primary managed by Sentinel, or a Redis Cluster. It lives outside
// internal/ because api-attendee imports it too.
//
// Both services see Redis through redis.UniversalClient. What differs between deployments, and
// what this package settles once, is how the URL is read, that every key of a stream sits in one
// cluster hash slot (Keys), and which connection a WAIT must run on (Primary).
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"conferencego/syncer/backoff"
)

// Modes of REDIS_MODE.
const (
	ModeStandalone = "standalone"
	ModeSentinel   = "sentinel"
	ModeCluster    = "cluster"
)

// DefaultConnectTimeout is how long Open waits for Redis to answer when Config leaves it zero:
// long enough for a service started together with Redis (compose, a restart) to ride out
// Redis's own start, short enough that a wrong URL stops the service visibly.
const DefaultConnectTimeout = 15 * time.Second

// Config is the Redis part of a service's environment.
//
// URL is read per Mode:
//   - standalone: redis://[user:pass@]host:port/db, as redis.ParseURL.
//   - sentinel: redis://[sentinel-user:sentinel-pass@]sentinel:port?master_name=NAME&addr=sentinel2:port,
//     as redis.ParseFailoverURL. The userinfo authenticates to the Sentinels; the primary's own
//     credentials go in the username= and password= parameters.
//   - cluster: redis://[user:pass@]seed:port?addr=seed2:port, as redis.ParseClusterURL; a
//     cluster has only database 0.
type Config struct {
	Mode           string        // REDIS_MODE; empty means standalone
	URL            string        // REDIS_URL
	ConnectTimeout time.Duration // how long Open waits for a first PING; zero means DefaultConnectTimeout
}

// Validate reports the first problem with c on one line that names the variable, without
// repeating the URL (it may hold a password).
func (c Config) Validate() error {
	_, err := c.options()
	return err
}

// options are the parsed options of the client a mode needs: exactly one is set.
type options struct {
	single   *redis.Options
	failover *redis.FailoverOptions
	cluster  *redis.ClusterOptions
}

// options parses c, so that Validate and Open read the URL the same way.
func (c Config) options() (options, error) {
	var o options
	switch c.mode() {
	case ModeStandalone:
		opts, err := redis.ParseURL(c.URL)
		if err != nil {
			return o, fmt.Errorf("REDIS_URL: %s", oneLine(err))
		}
		o.single = opts
	case ModeSentinel:
		opts, err := redis.ParseFailoverURL(c.URL)
		if err != nil {
			return o, fmt.Errorf("REDIS_URL: %s", oneLine(err))
		}
		if opts.MasterName == "" {
			return o, errors.New("REDIS_URL: sentinel mode needs master_name=")
		}
		o.failover = opts
	case ModeCluster:
		opts, err := redis.ParseClusterURL(c.URL)
		if err != nil {
			return o, fmt.Errorf("REDIS_URL: %s", oneLine(err))
		}
		// ParseClusterURL ignores the path; a /3 there would be silently dropped.
		u, _ := url.Parse(c.URL)
		if db := strings.Trim(u.Path, "/"); db != "" && db != "0" {
			return o, fmt.Errorf("REDIS_URL: cluster mode has only database 0, not %q", db)
		}
		o.cluster = opts
	default:
		return o, fmt.Errorf("REDIS_MODE: %q is not one of %s, %s, %s", c.Mode, ModeStandalone, ModeSentinel, ModeCluster)
	}
	return o, nil
}

func (c Config) mode() string {
	if m := strings.ToLower(strings.TrimSpace(c.Mode)); m != "" {
		return m
	}
	return ModeStandalone
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// Open returns the client c describes once Redis answers PING. Until then it retries with
// backoff, so a service that starts before Redis waits for it; it gives up after
// c.ConnectTimeout, when ctx ends, or at once when Redis refuses the credentials.
func Open(ctx context.Context, c Config) (redis.UniversalClient, error) {
	o, err := c.options()
	if err != nil {
		return nil, err
	}
	var rdb redis.UniversalClient
	switch {
	case o.single != nil:
		rdb = redis.NewClient(o.single)
	case o.failover != nil:
		rdb = redis.NewFailoverClient(o.failover)
	default:
		rdb = redis.NewClusterClient(o.cluster)
	}
	timeout := c.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wait := backoff.New(50*time.Millisecond, 2*time.Second)
	for {
		err := rdb.Ping(ctx).Err()
		if err == nil {
			return rdb, nil
		}
		if refused(err) {
			rdb.Close()
			return nil, fmt.Errorf("REDIS_URL: Redis (%s mode) at %s refuses the credentials: %s", c.mode(), Redacted(c.URL), oneLine(err))
		}
		if !wait.Wait(ctx) {
			rdb.Close()
			if errors.Is(context.Cause(ctx), context.Canceled) {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("REDIS_URL: no answer from Redis (%s mode) at %s within %s: %s", c.mode(), Redacted(c.URL), timeout, oneLine(err))
		}
	}
}

// refused reports whether err is Redis turning the credentials down, which waiting does not
// mend. Other replies (LOADING, MASTERDOWN, CLUSTERDOWN) pass, so Open waits them out.
func refused(err error) bool {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return false
	}
	for _, code := range []string{"WRONGPASS", "NOAUTH", "NOPERM"} {
		if strings.HasPrefix(reply.Error(), code) {
			return true
		}
	}
	return false
}

// Redacted is rawURL fit for a log: the password of the userinfo and of any *password=
// parameter (a Sentinel URL carries the primary's password as one) replaced by xxxxx.
func Redacted(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable)"
	}
	q := u.Query()
	masked := false
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q[k] = []string{"xxxxx"}
			masked = true
		}
	}
	if masked {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Primary returns the client of the primary that holds key, for commands that must run on the
// node that took a write. WAIT is one: it counts the replicas that acknowledged the writes of
// its own connection, so XADDs and the WAIT after them go in one pipeline on the returned
// client (a pipeline keeps to one connection). On a ClusterClient a keyless WAIT would go to
// any node; on a failover or standalone client the client already talks to the primary.
//
// The returned client belongs to rdb: do not close it. After a resharding or a failover it may
// answer MOVED or fail; ask again.
func Primary(ctx context.Context, rdb redis.UniversalClient, key string) (*redis.Client, error) {
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		node, err := c.MasterForKey(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("find the primary of %q: %w", key, err)
		}
		return node, nil
	case *redis.Client:
		return c, nil
	default:
		return nil, fmt.Errorf("find the primary of %q: a %T is not a client Open makes", key, rdb)
	}
}
