package redisstream

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"conferencego/api-attendee/internal/postgres/pgtest"
	"conferencego/api-attendee/internal/redisstream/redistest"
)

// aheadConfig is a config of batches of one that reads ahead from the first round on: the
// one sweep for idle entries is the first round's, and the next is an hour away.
func (f fixture) aheadConfig(name string) Config {
	cfg := f.config(name)
	cfg.BatchSize = 1
	cfg.ClaimMinIdle, cfg.ClaimInterval = time.Hour, time.Hour
	return cfg
}

// The next read is made while a batch is being applied. The test holds a lock that stops
// the first entry's apply; meanwhile Redis hands the second entry to the consumer, and acks
// neither, as neither is applied. A consumer that reads, applies and acks one after another
// would not read the second entry until the first was applied.
func TestConsumerReadsAheadWhileApplying(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	// SHARE stops every write to the table and no read of it.
	if _, err := tx.ExecContext(ctx, "LOCK TABLE conference_vos IN SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	ids := xadd(t, f.rdb, f.stream, pgtest.Created(1, 1, "A", 10), pgtest.Created(2, 1, "B", 10))
	c := mustConsumer(t, f.rdb, f.store, f.aheadConfig("ahead"))
	runCtx, cancel := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- c.Run(runCtx) }()
	defer func() {
		cancel()
		<-stopped
	}()

	pendingIDs := func() []string {
		p, err := f.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: f.stream, Group: f.group, Consumer: "ahead", Start: "-", End: "+", Count: 10,
		}).Result()
		if err != nil {
			return nil
		}
		var out []string
		for _, e := range p {
			out = append(out, e.ID)
		}
		return out
	}
	eventually(t, "the second entry delivered while the first is applied",
		func() bool { return slices.Equal(pendingIDs(), ids) }, func() any { return pendingIDs() })
	if v1, v2 := version(t, f.store, 1), version(t, f.store, 2); v1 != 0 || v2 != 0 {
		t.Fatalf("versions %d, %d while the table is locked: applied past the lock?", v1, v2)
	}
	if s := statsOf(c); s.Applied != 0 {
		t.Fatalf("stats %+v: acked while the apply waits for the lock", s)
	}

	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both applied and acked once the lock is gone", func() bool {
		return statsOf(c).Applied == 2 && len(pendingIDs()) == 0
	}, func() any { return statsOf(c) })
	if v1, v2 := version(t, f.store, 1), version(t, f.store, 2); v1 != 1 || v2 != 1 {
		t.Errorf("versions %d, %d, want 1, 1", v1, v2)
	}
}

// roundTrips records the stream commands a client sends, one element per round trip.
type roundTrips struct {
	mu    sync.Mutex
	trips []string
}

func (r *roundTrips) record(cmds ...redis.Cmder) {
	var names []string
	for _, cmd := range cmds {
		if n := cmd.Name(); strings.HasPrefix(n, "x") {
			names = append(names, n)
		}
	}
	if len(names) > 0 {
		r.mu.Lock()
		r.trips = append(r.trips, strings.Join(names, "+"))
		r.mu.Unlock()
	}
}

func (r *roundTrips) count() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := map[string]int{}
	for _, t := range r.trips {
		n[t]++
	}
	return n
}

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.record(cmd)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.record(cmds...)
		return next(ctx, cmds)
	}
}

// The acks of a batch ride with the next read. Over a backlog of n entries in batches of one,
// the consumer sweeps for idle entries once, reads the first entry, and then makes one round
// trip per entry: the ack of the entry before and the read of the one after. Only the last
// entry's ack goes alone, as its read ahead found the stream empty.
func TestConsumerAcksRideWithTheNextRead(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const n = 20
	for i := int64(1); i <= n; i++ {
		xadd(t, f.rdb, f.stream, pgtest.Created(i, 1, "C", 10))
	}
	rdb := redistest.Client(t)
	trips := &roundTrips{}
	rdb.AddHook(trips)
	c := mustConsumer(t, rdb, f.store, f.aheadConfig("ahead"))
	runUntil(t, c, func() bool { return statsOf(c).Applied == n })

	want := map[string]int{"xgroup": 1, "xautoclaim": 1, "xreadgroup": 2, "xack+xreadgroup": n - 1, "xack": 1}
	if diff := cmp.Diff(want, trips.count()); diff != "" {
		t.Errorf("round trips by the commands they carry (-want +got):\n%s", diff)
	}
	if pendingCount(t, f.rdb, f.stream, f.group) != 0 {
		t.Error("entries left pending")
	}
}
