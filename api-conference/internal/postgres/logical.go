package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"conferencego/pgschema"
	"conferencego/syncer/backoff"
	"conferencego/syncer/changeevent"
)

// Transport is how a write hands its event to the relay (OUTBOX_TRANSPORT).
type Transport string

const (
	// TransportTable writes an outbox row in the write's transaction; the relay claims and
	// deletes it.
	TransportTable Transport = "table"
	// TransportLogical emits the event as a transactional logical-decoding message in the
	// write's transaction (changeevent.MessagePrefix); the relay reads it from a replication
	// slot, in commit order. Nothing is written to a table for it, deleted or notified.
	TransportLogical Transport = "logical"
)

// Transports are the values OUTBOX_TRANSPORT takes.
var Transports = []string{string(TransportTable), string(TransportLogical)}

// WithLogical returns a Store like s whose conference writes emit logical-decoding messages
// instead of outbox rows, once it has checked that they will be read: the server decodes
// (wal_level=logical) and the replication slot slot exists in this database. A message is kept
// only by the slots that existed when it was written, so without the slot every change would be
// lost without a trace; when it is missing WithLogical makes it (and the publication pgoutput
// is started with, first, since pgoutput looks publications up as of each change it decodes),
// which needs a role with REPLICATION and CREATE on the database, and otherwise says so.
func (s *Store) WithLogical(ctx context.Context, slot string) (*Store, error) {
	if !changeevent.ValidSlot(slot) {
		return nil, fmt.Errorf("slot %q: want 1 to 63 lower-case letters, digits or underscores", slot)
	}
	q, err := pgschema.SQLOf(s.db)
	if err != nil {
		return nil, err
	}
	var level string
	if err := q.QueryRowContext(ctx, "SHOW wal_level").Scan(&level); err != nil {
		return nil, fmt.Errorf("read wal_level: %w", err)
	}
	if level != "logical" {
		return nil, fmt.Errorf("the server's wal_level is %s, not logical: its log holds no messages to decode (set wal_level=logical and restart Postgres)", level)
	}
	exists, err := slotReady(ctx, q, slot)
	if err != nil {
		return nil, err
	}
	if !exists {
		if err := createSlot(ctx, q, slot); err != nil {
			return nil, fmt.Errorf("replication slot %s does not exist in this database, and making it failed: %w "+
				"(make it as a superuser: CREATE PUBLICATION %s; SELECT pg_create_logical_replication_slot('%s', 'pgoutput'); "+
				"or start the syncer with SYNC_OUTBOX_TRANSPORT=logical first, which makes it)", slot, err, slot, slot)
		}
	}
	// A slot another process is making is listed before it keeps anything; wait until it does.
	for bo := backoff.New(50*time.Millisecond, time.Second); !exists; {
		if exists, err = slotReady(ctx, q, slot); err != nil {
			return nil, err
		}
		if !exists && !bo.Wait(ctx) {
			return nil, fmt.Errorf("replication slot %s: %w", slot, ctx.Err())
		}
	}
	c := *s
	c.logical, c.slot, c.notify, c.notifier = true, slot, NotifyOff, nil
	return &c, nil
}

// slotReady reports whether slot exists in this database for pgoutput and keeps what is
// written from now on (it has a confirmed position once it was made).
func slotReady(ctx context.Context, q pgschema.Querier, slot string) (bool, error) {
	var ready bool
	if err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_replication_slots
        WHERE slot_name = $1 AND database = current_database() AND plugin = 'pgoutput'
          AND confirmed_flush_lsn IS NOT NULL)`, slot).Scan(&ready); err != nil {
		return false, fmt.Errorf("look for replication slot %s: %w", slot, err)
	}
	return ready, nil
}

// createSlot makes the publication and then the slot, each in a statement of its own (a slot
// cannot be made in a transaction that wrote). A creator racing this one is not an error.
func createSlot(ctx context.Context, q pgschema.Querier, slot string) error {
	if _, err := q.ExecContext(ctx, changeevent.EnsurePublicationSQL(slot)); err != nil {
		return fmt.Errorf("create publication: %w", err)
	}
	_, err := q.ExecContext(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, slot)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42710" { // duplicate_object: made meanwhile, or another's
		var mine bool
		var database, plugin string
		if err := q.QueryRowContext(ctx, `SELECT coalesce(database, ''), plugin, coalesce(database = current_database(), false)
            FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&database, &plugin, &mine); err != nil {
			return fmt.Errorf("look at replication slot %s: %w", slot, err)
		}
		if !mine || plugin != "pgoutput" {
			return fmt.Errorf("a replication slot of that name exists for database %q with plugin %s", database, plugin)
		}
		return nil
	}
	return err
}
