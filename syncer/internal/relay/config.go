package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"conferencego/syncer/changeevent"
)

// Config holds the relay's settings. Zero values take the defaults of setDefaults.
type Config struct {
	// Stream is the Redis stream events go to; dead letters go to Stream + ".dlq".
	Stream string
	// MaxLen caps the stream approximately (XADD MAXLEN ~). Entries beyond it are trimmed
	// even if unread, so it must be far above any backlog a consumer can build up.
	MaxLen int64
	// BatchSize is how many outbox rows one transaction claims and publishes.
	BatchSize int
	// Sweep is how often the outbox is read when no notification arrives: the fallback for a
	// notification lost while the listener was reconnecting.
	Sweep time.Duration
	// Poll, if set, makes the relay read the outbox that often while it is empty instead of
	// waiting for notifications: api-conference may then commit without NOTIFY, whose global
	// lock at commit serialises its writers. Zero listens (with the sweep as the fallback).
	Poll time.Duration
	// Linger, if set, is the least time from a claim that found rows to the next claim (unless
	// it found a full batch): under load the rows that arrive meanwhile go out in one batch,
	// trading up to Linger of lag for fewer transactions. Zero claims as soon as woken.
	Linger time.Duration
	// EpochCheck is how often the relay checks that Redis still holds its epoch marker.
	EpochCheck time.Duration
	// Reconcile, if set, brings api-attendee level with the source through a full snapshot.
	// It runs at start, whenever Redis is found to have lost its data, and every
	// ReconcileInterval if that is positive. Nil turns self-healing off.
	Reconcile         func(ctx context.Context) error
	ReconcileInterval time.Duration
	// ReconcileFailed, if set, reports a failed reconcile instead of the relay's own warning
	// (it is retried with backoff either way), so that a changed source is said once.
	// EpochCheck, Reconcile, ReconcileInterval and ReconcileFailed are the healer's.
	ReconcileFailed func(err error)
	// WaitReplicas, if positive, makes the relay WAIT after its XADDs until that many replicas
	// hold them, for at most WaitTimeout, before it deletes the outbox rows: a failover then
	// cannot lose an entry the outbox has forgotten. When fewer acknowledge in time, the batch
	// stays in the outbox and is published again (consumers absorb the duplicates).
	WaitReplicas int
	WaitTimeout  time.Duration
	// Transport is TransportTable (the default) or TransportLogical. With TransportLogical the
	// relay reads api-conference's messages from the replication slot Slot (and the publication
	// of the same name) over a replication connection to WALConnString, and sweeps the outbox
	// table beside; Poll does not apply, and no LISTEN connection is needed.
	Transport     string
	Slot          string
	WALConnString string
	// LongOutage is how long publishing may fail before its recovery triggers a reconcile:
	// well under api-conference's OUTBOX_RETENTION, after which unpublished rows are pruned.
	LongOutage time.Duration
}

func (c *Config) setDefaults() {
	if c.Stream == "" {
		c.Stream = changeevent.DefaultStream
	}
	if c.MaxLen == 0 {
		c.MaxLen = 1_000_000
	}
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.Sweep == 0 {
		c.Sweep = 5 * time.Second
	}
	if c.EpochCheck == 0 {
		c.EpochCheck = time.Second
	}
	if c.LongOutage == 0 {
		c.LongOutage = time.Hour
	}
	if c.WaitTimeout == 0 {
		c.WaitTimeout = time.Second
	}
	if c.Transport == "" {
		c.Transport = TransportTable
	}
	if c.Slot == "" {
		c.Slot = changeevent.DefaultSlot
	}
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxLen < 1000 {
		errs = append(errs, fmt.Errorf("stream max length %d is below 1000", c.MaxLen))
	}
	if c.BatchSize < 1 || c.BatchSize > 10000 {
		errs = append(errs, fmt.Errorf("batch size %d is not within 1…10000", c.BatchSize))
	}
	if c.Sweep < 10*time.Millisecond || c.EpochCheck < 10*time.Millisecond {
		errs = append(errs, errors.New("sweep and epoch check intervals must be at least 10ms"))
	}
	if c.Poll != 0 && (c.Poll < time.Millisecond || c.Poll > time.Minute) {
		errs = append(errs, fmt.Errorf("outbox poll interval %s is not within 1ms…1m", c.Poll))
	}
	if c.Linger < 0 || c.Linger > time.Second {
		errs = append(errs, fmt.Errorf("linger %s is not within 0…1s", c.Linger))
	}
	if c.ReconcileInterval < 0 {
		errs = append(errs, errors.New("reconcile interval is negative"))
	}
	if c.WaitReplicas < 0 || c.WaitReplicas > 100 {
		errs = append(errs, fmt.Errorf("replicas to wait for, %d, is not within 0…100", c.WaitReplicas))
	}
	if c.WaitTimeout < time.Millisecond {
		errs = append(errs, errors.New("the replica wait timeout is under 1ms"))
	}
	switch c.Transport {
	case TransportTable:
	case TransportLogical:
		if c.Poll != 0 {
			errs = append(errs, errors.New("the logical transport is read from a replication slot, not polled"))
		}
		if c.WALConnString == "" {
			errs = append(errs, errors.New("the logical transport needs the database's connection string"))
		}
		if !changeevent.ValidSlot(c.Slot) {
			errs = append(errs, fmt.Errorf("slot %q is not 1 to 63 lower-case letters, digits or underscores", c.Slot))
		}
	default:
		errs = append(errs, fmt.Errorf("transport %q is neither %s nor %s", c.Transport, TransportTable, TransportLogical))
	}
	return errors.Join(errs...)
}
