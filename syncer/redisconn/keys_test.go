package redisconn_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"conferencego/syncer/redisconn"
	"conferencego/syncer/redisconn/redistest"
)

// TestKeysShareASlot asks a real cluster, not a copy of its hash function, where each key goes.
func TestKeysShareASlot(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t)
	node := redis.NewClient(&redis.Options{Addr: c.Addrs()[0]})
	t.Cleanup(func() { node.Close() })
	ctx := context.Background()
	for _, tc := range []struct{ stream, dlq, epoch string }{
		{"conference.changes", "{conference.changes}.dlq", "{conference.changes}.epoch"},
		{"{conference}.changes", "{conference}.changes.dlq", "{conference}.changes.epoch"},
		{"test.{ab12}.changes", "test.{ab12}.changes.dlq", "test.{ab12}.changes.epoch"},
		{"a{b", "{a{b}.dlq", "{a{b}.epoch"},
		{"x", "{x}.dlq", "{x}.epoch"},
	} {
		keys := redisconn.Keys(tc.stream)
		want := redisconn.StreamKeys{Stream: tc.stream, DeadLetter: tc.dlq, Epoch: tc.epoch}
		if keys != want {
			t.Errorf("Keys(%q) = %+v, want %+v", tc.stream, keys, want)
		}
		if err := redisconn.ValidateStream(tc.stream); err != nil {
			t.Errorf("ValidateStream(%q) = %v", tc.stream, err)
		}
		slot := node.ClusterKeySlot(ctx, keys.Stream).Val()
		for _, k := range []string{keys.DeadLetter, keys.Epoch} {
			if s := node.ClusterKeySlot(ctx, k).Val(); s != slot {
				t.Errorf("CLUSTER KEYSLOT %s = %d, but %s is in %d", k, s, keys.Stream, slot)
			}
		}
	}
}

func TestValidateStreamRejectsStrayBrace(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"a}b", "a{}b", "}x"} {
		if err := redisconn.ValidateStream(name); err == nil {
			t.Errorf("ValidateStream(%q) accepted a name Keys cannot keep in one slot", name)
		}
	}
}
