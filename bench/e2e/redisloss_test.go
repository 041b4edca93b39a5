package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestPushPartialRedisLoss (push): Redis comes back holding only part of what it accepted, with
// its epoch marker still there, so nothing says "new Redis": restarted from an older snapshot,
// failed over by Sentinel to a replica whose replication was paused, or emptied by its writer. The relay recorded, in the
// transaction that deleted the outbox rows, the newest entry it published; it finds the stream
// short of that (or the group owed entries the stream no longer has), reconciles, and the copy
// converges by itself, with api-attendee down throughout the loss as in the try.
func TestPushPartialRedisLoss(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		sentinel bool                          // a primary and a replica under Sentinel, instead of one server
		cause    string                        // the relay_redis_losses_total label that must count it
		before   func(t *testing.T, s *system) // before the updates
		lose     func(t *testing.T, s *system)
	}{
		{name: "failover to a replica that had not received the updates", sentinel: true, cause: lossBehindLabel,
			before: func(t *testing.T, s *system) { s.replicated.PauseReplication() },
			lose: func(t *testing.T, s *system) {
				s.replicated.Primary.Kill(t)
				s.sentinel.WaitForPrimary(t, s.replicated.Replica.Addr, 30*time.Second)
			}},
		{name: "restart from an older snapshot", cause: lossBehindLabel, lose: func(t *testing.T, s *system) {
			s.redis.Kill()
			s.redis.Start() // loads dump.rdb, written by SAVE before the updates
		}},
		{name: "truncated by its own writer", cause: lossTrimmedLabel, lose: func(t *testing.T, s *system) {
			// What the syncer's own Redis user may send: XADD … MAXLEN 0 empties the stream.
			if err := s.rdb.Do(context.Background(), "XADD", s.stream, "MAXLEN", "0", "*", "stray", "entry").Err(); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		for _, v := range pushVariants {
			if v.logical && tc.sentinel {
				continue // the failover is the stream's matter, the same for both transports
			}
			t.Run(tc.name+"/"+v.name, func(t *testing.T) {
				t.Parallel()
				s := setupVariant(t, v, options{sentinel: tc.sentinel})
				ctx := context.Background()
				w := newWorkload(t, s.api, seed(t))
				var ids []int64
				for i := range 10 {
					c, err := s.api.createConference(ctx, fmt.Sprintf("Kept %d", i), time.Date(2027, 6, 1+i, 9, 0, 0, 0, time.UTC), 2, 100, w.locations[0])
					if err != nil {
						t.Fatal(err)
					}
					w.AddCreated(c.ID)
					ids = append(ids, c.ID)
				}
				s.AwaitProjection(w.Created(), tombstoneRequired)
				// A snapshot with the epoch marker, the stream and the group as they are now.
				if err := s.rdb.Save(ctx).Err(); err != nil {
					t.Fatal(err)
				}
				s.attendees[0].Stop()
				streamed := streamLen(t, s)
				if tc.before != nil {
					tc.before(t, s)
				}
				for _, id := range ids {
					if _, err := s.api.updateConference(ctx, id, map[string]any{"name": fmt.Sprintf("Updated %d", id)}); err != nil {
						t.Fatal(err)
					}
				}
				awaitCondition(t, convergeWithin, "the relay to publish the updates and forget them at the source", func() bool {
					if v.logical {
						return publishedAndRecorded(t, s, streamed+int64(len(ids)))
					}
					var n int
					if err := s.db.QueryRow(ctx, "SELECT count(*) FROM conference.outbox").Scan(&n); err != nil {
						t.Fatal(err)
					}
					return n == 0
				})
				if tc.sentinel {
					// The state the test is about: the primary took the updates, the replica did not.
					pl := s.replicated.Primary.Client(t).XLen(ctx, s.stream).Val()
					rl := s.replicated.Replica.Client(t).XLen(ctx, s.stream).Val()
					if pl != rl+int64(len(ids)) {
						t.Fatalf("before the failover the primary holds %d entries and the replica %d; want the replica %d short", pl, rl, len(ids))
					}
				}
				tc.lose(t, s)
				s.attendees[0].Start()
				s.AwaitProjection(w.Created(), tombstoneRequired)
				metrics := s.syncers[0].URL() + "/metrics"
				if n := metricSum(t, metrics, `relay_redis_losses_total{cause="`+tc.cause+`"`); n < 1 {
					t.Errorf("the copy converged, but relay_redis_losses_total{cause=%q} is %v: what healed it?", tc.cause, n)
				}
				t.Logf("losses seen: %v; reconciles: %v", metricSum(t, metrics, "relay_redis_losses_total"), metricSum(t, metrics, "relay_reconciles_total"))
			})
		}
	}
}

// The causes of relay_redis_losses_total, as syncer/internal/relay names them.
const (
	lossBehindLabel  = "behind"
	lossTrimmedLabel = "trimmed"
)

// streamLen is how many entries the test's stream holds.
func streamLen(t *testing.T, s *system) int64 {
	t.Helper()
	n, err := s.rdb.XLen(context.Background(), s.stream).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// publishedAndRecorded reports whether the stream holds n entries and the source has its newest
// on record as published: what a later look compares the stream with.
func publishedAndRecorded(t *testing.T, s *system, n int64) bool {
	t.Helper()
	ctx := context.Background()
	info, err := s.rdb.XInfoStream(ctx, s.stream).Result()
	if err != nil {
		t.Fatal(err)
	}
	var ms, seq int64
	if err := s.db.QueryRow(ctx, "SELECT ms, seq FROM conference.published_position($1)", s.stream).Scan(&ms, &seq); err != nil {
		return false // nothing on record yet
	}
	return info.Length >= n && info.LastGeneratedID == fmt.Sprintf("%d-%d", ms, seq)
}
