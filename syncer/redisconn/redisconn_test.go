package redisconn_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"conferencego/syncer/redisconn"
	"conferencego/syncer/redisconn/redistest"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  redisconn.Config
		want string // "" for valid
	}{
		{"default mode", redisconn.Config{URL: "redis://localhost:6379/0"}, ""},
		{"standalone", redisconn.Config{Mode: "standalone", URL: "redis://:pw@localhost:6379/2"}, ""},
		{"mode in capitals", redisconn.Config{Mode: " Cluster ", URL: "redis://127.0.0.1:7000"}, ""},
		{"sentinel", redisconn.Config{Mode: "sentinel", URL: "redis://u:p@127.0.0.1:26379?master_name=mymaster&addr=127.0.0.1:26380"}, ""},
		{"cluster", redisconn.Config{Mode: "cluster", URL: "redis://127.0.0.1:7000?addr=127.0.0.1:7001"}, ""},
		{"cluster db 0", redisconn.Config{Mode: "cluster", URL: "redis://127.0.0.1:7000/0"}, ""},
		{"unknown mode", redisconn.Config{Mode: "sentinal", URL: "redis://localhost"}, `REDIS_MODE: "sentinal" is not one of standalone, sentinel, cluster`},
		{"bad scheme", redisconn.Config{URL: "http://localhost:6379"}, "REDIS_URL: redis: invalid URL scheme: http"},
		{"sentinel without master", redisconn.Config{Mode: "sentinel", URL: "redis://127.0.0.1:26379"}, "REDIS_URL: sentinel mode needs master_name="},
		{"master_name in standalone", redisconn.Config{URL: "redis://127.0.0.1:6379?master_name=m"}, "REDIS_URL: redis: unexpected option: master_name"},
		{"cluster db 3", redisconn.Config{Mode: "cluster", URL: "redis://127.0.0.1:7000/3"}, `REDIS_URL: cluster mode has only database 0, not "3"`},
		{"cluster bad addr", redisconn.Config{Mode: "cluster", URL: "redis://127.0.0.1:7000?addr=nope"}, "REDIS_URL: redis: unable to parse addr param: nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"redis://:secret@localhost:6379/0":                           "redis://:xxxxx@localhost:6379/0",
		"redis://u:secret@h:26379?master_name=m&password=alsosecret": "redis://u:xxxxx@h:26379?master_name=m&password=xxxxx",
		"redis://localhost:6379/0":                                   "redis://localhost:6379/0",
		"redis://h:1?addr=h:2&addr=h:3":                              "redis://h:1?addr=h:2&addr=h:3",
		"redis://%zz":                                                "(unparsable)",
	} {
		if got := redisconn.Redacted(raw); got != want {
			t.Errorf("Redacted(%q) = %q, want %q", raw, got, want)
		}
	}
}

// TestOpenRoundTrip sends events through the client Open makes in every mode: XADD to the
// stream and the dead-letter stream in one pipeline (one slot, so one node even in a cluster),
// then XREADGROUP and XACK.
func TestOpenRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode  string
		start func(t *testing.T) string // returns REDIS_URL
	}{
		{redisconn.ModeStandalone, func(t *testing.T) string { return redistest.StartServer(t).URL() }},
		{redisconn.ModeSentinel, func(t *testing.T) string {
			r := redistest.StartReplicated(t)
			return redistest.StartSentinel(t, r.Primary, "mymaster").URL()
		}},
		{redisconn.ModeCluster, func(t *testing.T) string { return redistest.StartCluster(t).URL() }},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			rdb := mustOpen(t, redisconn.Config{Mode: tc.mode, URL: tc.start(t)})
			keys := redisconn.Keys("test.roundtrip.changes")
			if err := rdb.XGroupCreateMkStream(ctx, keys.Stream, "attendee", "0").Err(); err != nil {
				t.Fatal(err)
			}
			_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i := 1; i <= 3; i++ {
					p.XAdd(ctx, &redis.XAddArgs{Stream: keys.Stream, Values: map[string]any{"n": i}})
				}
				p.XAdd(ctx, &redis.XAddArgs{Stream: keys.DeadLetter, Values: map[string]any{"reason": "test"}})
				p.Set(ctx, keys.Epoch, "1", 0)
				return nil
			})
			if err != nil {
				t.Fatalf("pipeline of XADDs to %v: %v", keys, err)
			}
			res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
				Group: "attendee", Consumer: "c1", Streams: []string{keys.Stream, ">"}, Count: 10, Block: time.Second,
			}).Result()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range res[0].Messages {
				got = append(got, fmt.Sprint(m.Values["n"]))
				if err := rdb.XAck(ctx, keys.Stream, "attendee", m.ID).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff([]string{"1", "2", "3"}, got); diff != "" {
				t.Errorf("XREADGROUP (-want +got):\n%s", diff)
			}
			if n := rdb.XLen(ctx, keys.DeadLetter).Val(); n != 1 {
				t.Errorf("XLEN %s = %d, want 1", keys.DeadLetter, n)
			}
			if pending := rdb.XPending(ctx, keys.Stream, "attendee").Val(); pending.Count != 0 {
				t.Errorf("%d entries pending after XACK", pending.Count)
			}
		})
	}
}

// TestOpenWaitsForRedis: a service that starts before Redis waits for it; one that never gets
// an answer stops with one line that names the variable and hides the password.
func TestOpenWaitsForRedis(t *testing.T) {
	t.Parallel()
	t.Run("late", func(t *testing.T) {
		t.Parallel()
		srv := redistest.StartServer(t)
		srv.Kill(t)
		opened := make(chan error, 1)
		go func() {
			rdb, err := redisconn.Open(context.Background(), redisconn.Config{URL: srv.URL(), ConnectTimeout: 20 * time.Second})
			if err == nil {
				rdb.Close()
			}
			opened <- err
		}()
		srv.Start(t)
		if err := <-opened; err != nil {
			t.Fatalf("Open while Redis starts: %v", err)
		}
	})
	t.Run("never", func(t *testing.T) {
		t.Parallel()
		srv := redistest.StartServer(t)
		srv.Kill(t)
		url := "redis://:secret@" + srv.Addr + "/0"
		_, err := redisconn.Open(context.Background(), redisconn.Config{URL: url, ConnectTimeout: 300 * time.Millisecond})
		if err == nil {
			t.Fatal("Open of a stopped server succeeded")
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "REDIS_URL: no answer from Redis (standalone mode) at redis://:xxxxx@") ||
			strings.Contains(msg, "secret") || strings.Contains(msg, "\n") {
			t.Errorf("error = %q, want one line naming REDIS_URL without the password", msg)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		t.Parallel()
		srv := redistest.StartServer(t)
		url := "redis://nobody:secret@" + srv.Addr + "/0"
		start := time.Now()
		_, err := redisconn.Open(context.Background(), redisconn.Config{URL: url, ConnectTimeout: 10 * time.Second})
		if err == nil || !strings.Contains(err.Error(), "refuses the credentials") || strings.Contains(err.Error(), "secret") {
			t.Fatalf("Open with a wrong password = %v, want a refusal without the password", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Open retried a refused password for %s", d)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := redisconn.Open(ctx, redisconn.Config{URL: "redis://127.0.0.1:1/0"}); err != context.Canceled {
			t.Errorf("Open with a cancelled context = %v, want context.Canceled", err)
		}
	})
}

func mustOpen(t *testing.T, cfg redisconn.Config) redis.UniversalClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rdb, err := redisconn.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", cfg.Mode, err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// eventually calls try until it returns nil or limit passes: the other side is a Redis process
// (a failover) that sends no signal.
func eventually(t *testing.T, limit time.Duration, try func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := try(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", limit, err)
		}
		timer := time.NewTimer(50 * time.Millisecond)
		<-timer.C
	}
}
