package relay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"conferencego/syncer/changeevent"
	"conferencego/syncer/redisconn"
	"conferencego/syncer/redisconn/redistest"
)

// With WaitReplicas set, a batch leaves the outbox only once a replica holds it. While the
// replica hears nothing, every round keeps its rows and counts a shortfall; once it hears again,
// the rows go and the replica has every event.
func TestWaitKeepsTheBatchUntilAReplicaHoldsIt(t *testing.T) {
	t.Parallel()
	pool, listen := newConferenceDB(t)
	rs := redistest.StartReplicated(t)
	rdb := rs.Primary.Client(t)
	stream := "test.wait." + randomName()
	reg := prometheus.NewRegistry()
	r, err := New(slog.New(slog.NewTextHandler(io.Discard, nil)), pool, listen, rdb,
		// Generous: a replica under -race on a loaded machine can take a while to acknowledge, and
		// a paused one costs the test this much per round.
		Config{Stream: stream, WaitReplicas: 1, WaitTimeout: 3 * time.Second}, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	commitEvent(t, pool, 1, 1, changeevent.Created)
	if n, err := r.runOnce(ctx); err != nil || n != 1 {
		t.Fatalf("with the replica in sync: published %d, %v", n, err)
	}

	rs.PauseReplication()
	commitEvent(t, pool, 1, 2, changeevent.Updated)
	for range 2 {
		if _, err := r.runOnce(ctx); err == nil || !strings.Contains(err.Error(), "0 of 1 replicas") {
			t.Fatalf("with replication paused: err = %v, want a shortfall", err)
		}
		if n := outboxCount(t, pool); n != 1 {
			t.Fatalf("%d outbox rows after a shortfall, want the batch's 1", n)
		}
	}
	if got := testutil.ToFloat64(r.m.waitShortfalls); got != 2 {
		t.Errorf("relay_wait_shortfalls_total = %v, want 2", got)
	}

	rs.ResumeReplication()
	if n, err := r.runOnce(ctx); err != nil || n != 1 {
		t.Fatalf("after replication resumed: published %d, %v", n, err)
	}
	if n := outboxCount(t, pool); n != 0 {
		t.Fatalf("%d outbox rows left", n)
	}
	// The replica holds the update (published three times: duplicates, which the version
	// guard absorbs downstream).
	replica := rs.Replica.Client(t)
	entries, err := replica.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var versions []string
	for _, e := range entries {
		ev, err := changeevent.Decode(e.Values)
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, fmt.Sprint(ev.Version))
	}
	if got := strings.Join(versions, ","); got != "1,2,2,2" {
		t.Errorf("the replica holds versions %s, want 1,2,2,2", got)
	}
}

// BenchmarkRelayWait measures what waiting for one replica costs the relay against not
// waiting, in one run on one primary with one replica on loopback:
//
//	go test -run '^$' -bench RelayWait -benchtime 2000x ./internal/relay
//
// Each iteration commits one outbox row the way api-conference does (not timed) and publishes
// it: claim, XADD (and WAIT), record the position, commit.
func BenchmarkRelayWait(b *testing.B) {
	pool, listen := newConferenceDB(b)
	rs := redistest.StartReplicated(b)
	rdb := rs.Primary.Client(b)
	for _, replicas := range []int{0, 1} {
		b.Run(fmt.Sprintf("replicas=%d", replicas), func(b *testing.B) {
			r, err := New(slog.New(slog.NewTextHandler(io.Discard, nil)), pool, listen, rdb,
				Config{Stream: "bench.wait." + randomName(), WaitReplicas: replicas}, prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			v := int64(0)
			for b.Loop() {
				v++
				b.StopTimer()
				commitEvent(b, pool, 1, v, changeevent.TypeFor(v, false))
				b.StartTimer()
				if n, err := r.runOnce(ctx); err != nil || n != 1 {
					b.Fatalf("published %d, %v", n, err)
				}
			}
		})
	}
}

// On a Redis Cluster the relay publishes through the primary that holds the stream's slot,
// with its dead letters and epoch marker in the same slot, and still tells a loss.
func TestRelayOnACluster(t *testing.T) {
	t.Parallel()
	pool, listen := newConferenceDB(t)
	cluster := redistest.StartCluster(t)
	ctx := context.Background()
	rdb, err := redisconn.Open(ctx, redisconn.Config{Mode: redisconn.ModeCluster, URL: cluster.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	stream := "test.cluster." + randomName()
	r, err := New(slog.New(slog.NewTextHandler(io.Discard, nil)), pool, listen, rdb, Config{Stream: stream}, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.XGroupCreateMkStream(ctx, stream, "attendee", "0").Err(); err != nil {
		t.Fatal(err)
	}
	for v := int64(1); v <= 3; v++ {
		commitEvent(t, pool, 9, v, changeevent.TypeFor(v, false))
	}
	publishAll(t, r)
	if n := rdb.XLen(ctx, stream).Val(); n != 3 {
		t.Fatalf("the stream holds %d entries, want 3", n)
	}
	if l, err := r.heal.findLoss(ctx); err != nil || l.cause != "" {
		t.Fatalf("nothing lost: loss=%+v err=%v", l, err)
	}
	if err := rdb.Do(ctx, "XADD", stream, "MAXLEN", "0", "*", "x", "y").Err(); err != nil {
		t.Fatal(err)
	}
	if l, err := r.heal.findLoss(ctx); err != nil || l.cause != lossTrimmed {
		t.Fatalf("after XADD MAXLEN 0: loss=%+v err=%v; want %s", l, err, lossTrimmed)
	}
}
