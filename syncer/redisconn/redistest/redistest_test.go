package redistest_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"conferencego/syncer/redisconn/redistest"
)

func TestServerPersistence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts []redistest.Option
		want int64 // keys after a kill -9 and a start
	}{
		{"without", nil, 0},
		{"persistent", []redistest.Option{redistest.Persistent()}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			srv := redistest.StartServer(t, tc.opts...)
			t.Logf("StartServer took %s", time.Since(start).Round(time.Millisecond))
			rdb := srv.Client(t)
			if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			srv.Restart(t)
			if n := rdb.Exists(ctx, "k").Val(); n != tc.want {
				t.Errorf("after kill -9 and start, %d keys, want %d", n, tc.want)
			}
		})
	}
}

// TestPauseReplication: while paused the replica gets nothing and yet, to itself, to the
// primary and to Sentinel, its link still looks up; after resuming it catches up.
func TestPauseReplication(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	start := time.Now()
	r := redistest.StartReplicated(t)
	t.Logf("StartReplicated took %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	redistest.StartSentinel(t, r.Primary, "mymaster")
	t.Logf("StartSentinel took %s", time.Since(start).Round(time.Millisecond))
	primary := r.Primary.Client(t).Conn() // WAIT counts the writes of its own connection
	t.Cleanup(func() { primary.Close() })
	replica := r.Replica.Client(t)

	r.PauseReplication()
	if err := primary.Set(ctx, "k", "held", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n := primary.Wait(ctx, 1, 200*time.Millisecond).Val(); n != 0 {
		t.Errorf("WAIT while paused = %d, want 0", n)
	}
	if n := replica.Exists(ctx, "k").Val(); n != 0 {
		t.Error("the replica got a write while replication was paused")
	}
	if text := replica.Info(ctx, "replication").Val(); !strings.Contains(text, "master_link_status:up") {
		t.Errorf("the paused replica reports its link down:\n%s", text)
	}

	r.ResumeReplication()
	if n := primary.Wait(ctx, 1, 5*time.Second).Val(); n != 1 {
		t.Errorf("WAIT after resuming = %d, want 1", n)
	}
	if got := replica.Get(ctx, "k").Val(); got != "held" {
		t.Errorf("replica has k=%q after resuming, want held", got)
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := redistest.StartCluster(t)
	t.Logf("StartCluster took %s", time.Since(start).Round(time.Millisecond))
	opts, err := redis.ParseClusterURL(c.URL())
	if err != nil {
		t.Fatalf("ParseClusterURL(%s): %v", c.URL(), err)
	}
	if len(opts.Addrs) != 3 {
		t.Errorf("URL %s names %d seeds, want 3", c.URL(), len(opts.Addrs))
	}
	rdb := redis.NewClusterClient(opts)
	t.Cleanup(func() { rdb.Close() })
	var shards atomic.Int32 // ForEachMaster calls in parallel
	err = rdb.ForEachMaster(context.Background(), func(ctx context.Context, node *redis.Client) error {
		shards.Add(1)
		return node.Ping(ctx).Err()
	})
	if err != nil || shards.Load() != 3 {
		t.Errorf("ForEachMaster: %d primaries, err %v; want 3", shards.Load(), err)
	}
}
