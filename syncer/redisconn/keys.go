package redisconn

import (
	"fmt"
	"strings"
)

// StreamKeys are the keys of one change stream. In a Redis Cluster they share one hash slot, so
// that a pipeline or a MULTI may touch all of them, and a WAIT after it covers them all.
type StreamKeys struct {
	Stream     string // the stream itself
	DeadLetter string // entries that could not be applied, with the reason
	Epoch      string // marker whose absence tells the relay that Redis lost its data
}

// Keys returns the keys of stream. A name with a hash tag ({...}) already pins its slot, so
// the other keys just add a suffix. A name without one keeps its own name as the stream key —
// `redis-cli XREAD STREAMS conference.changes 0` goes on working — and the others wrap it in a
// tag: a key without braces hashes whole, so "{S}.dlq" lands in the slot of "S". That fails
// only for a name with a } but no tag ("a}b", "a{}b"), which ValidateStream rejects.
func Keys(stream string) StreamKeys {
	base := stream
	if !hasHashTag(stream) {
		base = "{" + stream + "}"
	}
	return StreamKeys{Stream: stream, DeadLetter: base + ".dlq", Epoch: base + ".epoch"}
}

// hasHashTag follows Redis Cluster's rule: the tag is what lies between the first { and the
// first } after it, and only counts when not empty.
func hasHashTag(key string) bool {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return false
	}
	end := strings.IndexByte(key[open+1:], '}')
	return end > 0
}

// ValidateStream rejects a SYNC_STREAM name whose keys Keys cannot put in one slot: one with a
// } but no hash tag, since no tag can then spell the whole name.
func ValidateStream(name string) error {
	if !hasHashTag(name) && strings.Contains(name, "}") {
		return fmt.Errorf("SYNC_STREAM: %q has a } but no {tag}; drop the braces or tag it like {%s}", name, strings.ReplaceAll(name, "}", ""))
	}
	return nil
}
