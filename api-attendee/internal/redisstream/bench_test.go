package redisstream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"conferencego/api-attendee/internal/postgres/pgtest"
)

// BenchmarkConsumer measures how many entries per second one consumer applies and acks from
// a pre-filled stream, by batch size. Every entry is a change of one of 1,000 conferences,
// each newer than the last, so every entry really writes a row.
//
//	go test -run '^$' -bench Consumer -benchtime 20000x ./internal/redisstream
func BenchmarkConsumer(b *testing.B) {
	for _, size := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			f := setup(b)
			ctx := context.Background()
			b.StopTimer()
			const conferences = 1000
			pipe := f.rdb.Pipeline()
			for i := range b.N {
				id := int64(i%conferences) + 1
				fields, err := pgtest.Created(id, int64(i/conferences)+1, "Bench", 100).Fields()
				if err != nil {
					b.Fatal(err)
				}
				values := make([]any, len(fields))
				for j, v := range fields {
					values[j] = v
				}
				pipe.XAdd(ctx, &redis.XAddArgs{Stream: f.stream, Values: values})
				if pipe.Len() == 1000 || i == b.N-1 {
					if _, err := pipe.Exec(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			cfg := f.config("bench")
			cfg.BatchSize = size
			cfg.ClaimInterval = time.Hour // nothing to reclaim; keep it off the measured path
			c := mustConsumer(b, f.rdb, f.store, cfg)
			if err := c.ensureGroup(ctx); err != nil {
				b.Fatal(err)
			}
			c.lastClaim = time.Now()

			b.StartTimer()
			start := time.Now()
			// Rounds count what they handled; reading the Prometheus counters every round (a
			// goroutine and channels per counter) would be part of what is measured.
			for handled := 0; handled < b.N; {
				n, err := c.runOnce(ctx)
				if err != nil {
					b.Fatal(err)
				}
				handled += n
			}
			c.finish(ctx) // the last acks, should any wait for a read ahead
			elapsed := time.Since(start)
			b.StopTimer()
			if s := statsOf(c); s.Applied != int64(b.N) {
				b.Fatalf("stats %+v: want all %d entries applied and acked", s, b.N)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "entries/s")
		})
	}
}
