package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/uptrace/bun"

	"conferencego/pgschema"
	"conferencego/syncer/backoff"
	"conferencego/syncer/changeevent"
)

// NotifyMode is how a write tells the relay that the outbox has rows (OUTBOX_NOTIFY).
//
// A NOTIFY takes a lock at commit that is held until the commit record is on disk, one at a
// time for the whole database: every transaction that notifies commits after the one before
// has flushed. NotifyAfter takes it off the writes' commits; NotifyOff drops it for a relay
// that polls the outbox.
type NotifyMode string

const (
	// NotifyCommit notifies inside the writing statement, delivered when it commits.
	NotifyCommit NotifyMode = "commit"
	// NotifyAfter signals a Notifier once a write has committed; it notifies on its own.
	NotifyAfter NotifyMode = "after"
	// NotifyOff never notifies: the relay must poll the outbox.
	NotifyOff NotifyMode = "off"
)

// NotifyModes are the values OUTBOX_NOTIFY takes.
var NotifyModes = []string{string(NotifyCommit), string(NotifyAfter), string(NotifyOff)}

// notifySQL is the Notifier's statement, a transaction of its own: it writes nothing the
// relay needs to survive a crash (the relay's sweep finds the outbox rows anyway), so its
// commit need not wait for the disk.
var notifySQL = `SELECT set_config('synchronous_commit', 'off', true) = 'off', pg_notify('` + changeevent.NotifyChannel + `', '') IS NULL`

// Notifier sends the relay's NOTIFY for the writes of a NotifyAfter Store: one goroutine, so
// the writes of a burst share one notification per round trip. A notification that fails is
// retried; one that is lost is covered by the relay's sweep.
type Notifier struct {
	db   bun.IDB
	log  *slog.Logger
	wake chan struct{}
}

// NewNotifier returns a Notifier that notifies on db once Run runs.
func NewNotifier(db bun.IDB, log *slog.Logger) *Notifier {
	return &Notifier{db: db, log: log, wake: make(chan struct{}, 1)}
}

// Signal asks for a notification and returns at once; signals before it is sent are one.
func (n *Notifier) Signal() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run sends a notification after each signal until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	bo := backoff.New(100*time.Millisecond, 5*time.Second)
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		}
		if !bo.Retry(ctx, n.notify, func(err error) { n.log.Warn("notify the outbox relay", "err", err) }) {
			return
		}
	}
}

func (n *Notifier) notify(ctx context.Context) error {
	q, err := pgschema.SQLOf(n.db)
	if err != nil {
		return err
	}
	var set, notified bool
	if err := q.QueryRowContext(ctx, notifySQL, pgschema.Cached).Scan(&set, &notified); err != nil {
		return fmt.Errorf("notify: %w", translate(err))
	}
	return nil
}

// WithNotify returns a Store like s that notifies the relay per mode; with NotifyAfter, n
// sends the notifications. A NotifyAfter Store inside a transaction signals before that
// transaction commits: the relay may look too early, and then its sweep finds the rows.
func (s *Store) WithNotify(mode NotifyMode, n *Notifier) (*Store, error) {
	switch {
	case mode == NotifyAfter && n == nil:
		return nil, fmt.Errorf("notify %s needs a notifier", mode)
	case mode != NotifyCommit && mode != NotifyAfter && mode != NotifyOff:
		return nil, fmt.Errorf("notify %q: want one of %v", mode, NotifyModes)
	}
	c := *s
	c.notify, c.notifier = mode, n
	return &c, nil
}

// wrote is called after every write that made an outbox row.
func (s *Store) wrote() {
	if s.notify == NotifyAfter {
		s.notifier.Signal()
	}
}
