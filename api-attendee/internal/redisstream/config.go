package redisstream

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"conferencego/syncer/changeevent"
)

// Config holds a Consumer's settings. Zero fields get the defaults of setDefaults.
type Config struct {
	// Stream and Group name the stream and the consumer group (changeevent's defaults).
	Stream string
	Group  string
	// Consumer names this process within the group. It must be unique per process, or two
	// processes would share one pending list; the default is hostname-pid-random.
	Consumer string
	// BatchSize is the most entries read, applied in one transaction and acked at once.
	BatchSize int
	// Block is how long one XREADGROUP waits for new entries. It also bounds how long a
	// shutdown waits for the read in flight.
	Block time.Duration
	// ClaimMinIdle is how long an entry stays pending, unacked, before another consumer may
	// reclaim it: it must comfortably exceed the time two batches take to apply, as a batch read
	// ahead waits for the one before it.
	ClaimMinIdle time.Duration
	// ClaimInterval is how often the consumer looks for such entries.
	ClaimInterval time.Duration
	// MaxDeliveries is how many times an entry is tried before it is dead-lettered.
	MaxDeliveries int64
	// DeadLetterMaxLen caps the dead-letter stream (approximately) so it cannot grow forever.
	DeadLetterMaxLen int64
	// ApplyTimeout bounds applying and acking one batch. That work runs to the end even when
	// the consumer is asked to stop, so that the batch in hand is not left half done.
	ApplyTimeout time.Duration
	// BackoffBase and BackoffMax bound the wait between retries after a failure; the wait
	// doubles from base up to max, with jitter.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Logger receives the consumer's log lines; nil discards them.
	Logger *slog.Logger
	// Registerer, when set, receives the consumer's counters as Prometheus metrics.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	orDefault(&c.Stream, changeevent.DefaultStream)
	orDefault(&c.Group, changeevent.DefaultGroup)
	if c.Consumer == "" {
		c.Consumer = uniqueConsumerName() // not via orDefault: only made when needed
	}
	orDefault(&c.BatchSize, 100)
	orDefault(&c.Block, 2*time.Second)
	orDefault(&c.ClaimMinIdle, 30*time.Second)
	orDefault(&c.ClaimInterval, max(c.ClaimMinIdle/4, 10*time.Millisecond))
	orDefault(&c.MaxDeliveries, 5)
	orDefault(&c.DeadLetterMaxLen, 100_000)
	orDefault(&c.ApplyTimeout, 30*time.Second)
	orDefault(&c.BackoffBase, 100*time.Millisecond)
	orDefault(&c.BackoffMax, 10*time.Second)
	orDefault(&c.Logger, slog.New(slog.DiscardHandler))
}

// orDefault sets *v to def when *v is the zero value: a setting left out.
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Validate reports every setting that cannot work.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, n := range []struct{ what, name string }{{"stream", c.Stream}, {"group", c.Group}, {"consumer", c.Consumer}} {
		if n.name == "" || len(n.name) > 200 {
			bad("%s name must have 1 to 200 characters", n.what)
		}
	}
	if c.BatchSize < 1 || c.BatchSize > 10_000 {
		bad("batch size %d is not between 1 and 10000", c.BatchSize)
	}
	// BLOCK 0 would mean "forever", and a shutdown would never end.
	if c.Block < time.Millisecond || c.Block > time.Minute {
		bad("block %s is not between 1ms and 1m", c.Block)
	}
	if c.ClaimMinIdle < time.Millisecond {
		bad("claim idle time %s is shorter than 1ms", c.ClaimMinIdle)
	}
	if c.ClaimInterval <= 0 {
		bad("claim interval %s is not positive", c.ClaimInterval)
	}
	if c.MaxDeliveries < 1 {
		bad("max deliveries %d is below 1", c.MaxDeliveries)
	}
	if c.DeadLetterMaxLen < 1 {
		bad("dead-letter max length %d is below 1", c.DeadLetterMaxLen)
	}
	if c.ApplyTimeout <= 0 {
		bad("apply timeout %s is not positive", c.ApplyTimeout)
	}
	if c.BackoffBase <= 0 || c.BackoffMax < c.BackoffBase {
		bad("backoff %s..%s is not a positive, increasing range", c.BackoffBase, c.BackoffMax)
	}
	return errors.Join(errs...)
}

// uniqueConsumerName is hostname-pid-random: readable in XINFO CONSUMERS, and unique even for
// two containers that reuse a hostname and a pid.
func uniqueConsumerName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "attendee"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}
