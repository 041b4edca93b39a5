package e2e

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"conferencego/syncer/changeevent"
)

// outboxTx is an open transaction that changed a conference the way api-conference does
// (internal/postgres: UpdateConference and recordChanges): the row with the next version, its
// outbox row, the change marker and pg_notify, all delivered at commit.
type outboxTx struct {
	tx       pgx.Tx
	id       int64
	outboxID int64
	version  int64
}

// beginOutboxUpdate renames conference id in a transaction of its own connection and leaves
// the transaction open; it is rolled back when t ends unless committed.
func beginOutboxUpdate(t *testing.T, dsn string, id int64, name string) *outboxTx {
	t.Helper()
	o := beginOutboxChange(t, dsn, id, name)
	o.bumpMarker(t)
	return o
}

// beginOutboxChange is beginOutboxUpdate without the change marker and the NOTIFY: the row and
// its outbox row are written and the transaction stays open without holding the marker slot's
// lock, which would hold up every other write of that slot; CommitWithMarker ends it.
func beginOutboxChange(t *testing.T, dsn string, id int64, name string) *outboxTx {
	t.Helper()
	ctx := context.Background()
	conn := connect(t, dsn)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
			t.Errorf("roll back: %v", err)
		}
	})
	o := &outboxTx{tx: tx, id: id}
	c := changeevent.Conference{ID: id, Href: changeevent.Href(id), Name: name}
	var locationID int64
	if err := tx.QueryRow(ctx, `UPDATE conference.conferences SET name = $2, version = version + 1, updated = now()
		WHERE id = $1 RETURNING version, starts, ends, max_attendees, location_id`, id, name).
		Scan(&o.version, &c.Starts, &c.Ends, &c.MaxAttendees, &locationID); err != nil {
		t.Fatalf("update conference %d: %v", id, err)
	}
	if err := tx.QueryRow(ctx, "SELECT name, city, state FROM conference.locations WHERE id = $1", locationID).
		Scan(&c.Location.Name, &c.Location.City, &c.Location.State); err != nil {
		t.Fatalf("read location %d: %v", locationID, err)
	}
	payload, err := changeevent.MarshalData(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(ctx, `INSERT INTO conference.outbox (conference_id, type, version, payload)
		VALUES ($1, $2, $3, $4::jsonb) RETURNING id`, id, string(changeevent.Updated), o.version, string(payload)).
		Scan(&o.outboxID); err != nil {
		t.Fatalf("insert outbox row: %v", err)
	}
	return o
}

// CommitWithMarker bumps the change marker, notifies and commits, as api-conference ends a change.
func (o *outboxTx) CommitWithMarker(t *testing.T) {
	t.Helper()
	o.bumpMarker(t)
	o.Commit(t)
}

// bumpMarker bumps the change marker and notifies, in the transaction.
func (o *outboxTx) bumpMarker(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	// The marker slot is id % 16, as in api-conference; callers keep the slots of concurrent
	// transactions apart, or the second would wait for the first's commit.
	if _, err := o.tx.Exec(ctx, "UPDATE conference.change_marker SET n = n + 1 WHERE slot = $1", o.id%16); err != nil {
		t.Fatalf("bump change marker: %v", err)
	}
	if _, err := o.tx.Exec(ctx, "SELECT pg_notify($1, '')", changeevent.NotifyChannel); err != nil {
		t.Fatalf("notify: %v", err)
	}
}

// Commit commits the transaction.
func (o *outboxTx) Commit(t *testing.T) {
	t.Helper()
	if err := o.tx.Commit(context.Background()); err != nil {
		t.Fatalf("commit the update of conference %d: %v", o.id, err)
	}
}
