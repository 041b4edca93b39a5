// Package redistest gives tests Redis: per-test stream and group names on the shared server,
// and a private redis-server process for tests that must kill and restart it.
//
// The shared server is TEST_REDIS_URL (default redis://127.0.0.1:6379/0); tests only ever
// touch their own keys on it. When it cannot be reached, or redis-server is not installed, a
// test skips with the reason on a developer's machine and fails when CI is set.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"conferencego/syncer/redisconn/redistest"

	"conferencego/syncer/redisconn"
)

// URL is the shared server's URL.
func URL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

func unavailable(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// Client returns a client of the shared server, closed when tb ends.
func Client(tb testing.TB) *redis.Client {
	tb.Helper()
	opts, err := redis.ParseURL(URL())
	if err != nil {
		tb.Fatalf("TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opts)
	tb.Cleanup(func() { rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		unavailable(tb, fmt.Sprintf("Redis is not reachable at %s (set TEST_REDIS_URL): %v", URL(), err))
	}
	return rdb
}

// Names returns a stream and a group name of tb's own. The stream and its dead-letter stream
// are deleted from rdb when tb ends.
func Names(tb testing.TB, rdb *redis.Client) (stream, group string) {
	tb.Helper()
	id := randomName()
	stream, group = "test."+id+".changes", "test-"+id
	tb.Cleanup(func() {
		_ = rdb.Del(context.Background(), stream, redisconn.Keys(stream).DeadLetter).Err()
	})
	return stream, group
}

// Server is a redis-server process of one test, without persistence: a restart loses every
// key, as a Redis without a volume does. It is the syncer's harness, shared so that both
// sides of the stream test against the same kind of server.
type Server = redistest.Server

// StartServer starts a redis-server on a free port in a temporary directory. It is killed
// when tb ends.
func StartServer(tb testing.TB) *Server { return redistest.StartServer(tb) }

func randomName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
