package redisconn_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"conferencego/syncer/redisconn"
	"conferencego/syncer/redisconn/redistest"
)

// publish is what the relay will do: XADDs and a WAIT in one pipeline on the primary of the
// stream, and the number of replicas that acknowledged them.
func publish(t *testing.T, rdb redis.UniversalClient, stream string, from, to int, wait time.Duration) int64 {
	t.Helper()
	ctx := context.Background()
	primary, err := redisconn.Primary(ctx, rdb, stream)
	if err != nil {
		t.Fatal(err)
	}
	var replicas *redis.Cmd
	_, err = primary.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := from; i <= to; i++ {
			p.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: map[string]any{"n": i}})
		}
		replicas = p.Do(ctx, "WAIT", 1, wait.Milliseconds())
		return nil
	})
	if err != nil {
		t.Fatalf("XADD %d..%d and WAIT on the primary of %s: %v", from, to, stream, err)
	}
	n, err := replicas.Int64()
	if err != nil {
		t.Fatalf("WAIT: %v", err)
	}
	return n
}

func TestPrimaryWait(t *testing.T) {
	t.Parallel()
	t.Run("one replica", func(t *testing.T) {
		t.Parallel()
		r := redistest.StartReplicated(t)
		rdb := mustOpen(t, redisconn.Config{URL: r.Primary.URL()})
		if n := publish(t, rdb, "test.wait", 1, 3, 5*time.Second); n != 1 {
			t.Errorf("WAIT with a replica in sync = %d, want 1", n)
		}
	})
	t.Run("no replica", func(t *testing.T) {
		t.Parallel()
		rdb := mustOpen(t, redisconn.Config{URL: redistest.StartServer(t).URL()})
		if n := publish(t, rdb, "test.wait", 1, 3, 50*time.Millisecond); n != 0 {
			t.Errorf("WAIT without replicas = %d, want 0", n)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		// A pipeline on a node that does not own the slot gets MOVED: streams spread over
		// the three nodes show that Primary picks the owner every time.
		rdb := mustOpen(t, redisconn.Config{Mode: redisconn.ModeCluster, URL: redistest.StartCluster(t).URL()})
		for i := range 12 {
			keys := redisconn.Keys(fmt.Sprintf("test.wait.%d", i))
			if n := publish(t, rdb, keys.Stream, 1, 2, 50*time.Millisecond); n != 0 {
				t.Errorf("WAIT on a cluster without replicas = %d, want 0", n)
			}
		}
	})
}

// TestSentinelFailoverLosesUnreplicatedWrites is the case the relay's WAIT is for: writes the
// primary took but the replica did not are gone after Sentinel promotes the replica, and a
// client in sentinel mode follows the promotion on its own.
func TestSentinelFailoverLosesUnreplicatedWrites(t *testing.T) {
	t.Parallel()
	r := redistest.StartReplicated(t)
	s := redistest.StartSentinel(t, r.Primary, "mymaster")
	rdb := mustOpen(t, redisconn.Config{Mode: redisconn.ModeSentinel, URL: s.URL()})
	const stream = "test.failover.changes"

	if n := publish(t, rdb, stream, 1, 5, 5*time.Second); n != 1 {
		t.Fatalf("WAIT before the pause = %d, want 1", n)
	}
	r.PauseReplication()
	if n := publish(t, rdb, stream, 6, 9, 200*time.Millisecond); n != 0 {
		t.Fatalf("WAIT while replication is paused = %d, want 0", n)
	}
	// Sentinel promotes only a replica whose link looks healthy; the paused forwarder keeps the
	// connection open, so this one does, as a replica on a slow network would.
	if text := r.Replica.Client(t).Info(context.Background(), "replication").Val(); !strings.Contains(text, "master_link_status:up") {
		t.Fatalf("the paused replica reports its link down:\n%s", text)
	}
	r.Primary.Kill(t)
	start := time.Now()
	s.WaitForPrimary(t, r.Replica.Addr, 30*time.Second)
	t.Logf("Sentinel promoted the replica %s after the kill", time.Since(start).Round(time.Millisecond))

	var got []string
	eventually(t, 30*time.Second, func(ctx context.Context) error {
		role, err := rdb.Do(ctx, "ROLE").Slice()
		if err != nil {
			return err
		}
		if role[0] != "master" {
			return errors.New("the client still talks to a replica")
		}
		entries, err := rdb.XRange(ctx, stream, "-", "+").Result()
		if err != nil {
			return err
		}
		got = got[:0]
		for _, e := range entries {
			got = append(got, fmt.Sprint(e.Values["n"]))
		}
		return nil
	})
	t.Logf("the sentinel-mode client reached the new primary %s after the kill", time.Since(start).Round(time.Millisecond))
	if diff := cmp.Diff([]string{"1", "2", "3", "4", "5"}, got); diff != "" {
		t.Errorf("stream on the promoted replica (-want +got):\n%s", diff)
	}
}
