package postgres_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"

	"conferencego/api-conference/internal/conference"
	"conferencego/api-conference/internal/postgres"
	"conferencego/api-conference/internal/postgres/pgtest"
	"conferencego/syncer/changeevent"
)

// The relay's channel is the database's, shared by every test's schema, so each test tells
// its own notifications by the backend that sent them: its store and its notifier work on
// connections of their own.

// listen returns the notifications on the relay's channel, received on a connection of its own.
func listen(t *testing.T, db *bun.DB) <-chan *pgconn.Notification {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan *pgconn.Notification)
	ready, done := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(done)
		_ = conn.Raw(func(dc any) error {
			pc := dc.(*stdlib.Conn).Conn()
			_, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{changeevent.NotifyChannel}.Sanitize())
			ready <- err
			for err == nil {
				var n *pgconn.Notification
				if n, err = pc.WaitForNotification(ctx); err == nil {
					select {
					case out <- n:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			}
			return err
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = conn.Close()
	})
	if err := <-ready; err != nil {
		t.Fatalf("listen: %v", err)
	}
	return out
}

// ownConn returns a connection of db's of its own and its backend's pid.
func ownConn(t *testing.T, db *bun.DB) (bun.Conn, uint32) {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	var pid uint32
	if err := c.NewRaw("SELECT pg_backend_pid()").Scan(context.Background(), &pid); err != nil {
		t.Fatal(err)
	}
	return c, pid
}

// awaitNotify returns the first notification from pid with payload, and the ones from pid before it;
// an error if none comes within ten seconds.
func awaitNotify(ch <-chan *pgconn.Notification, pid uint32, payload string) (before []string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return before, errors.New("no notification " + payload + " within 10s")
		case n := <-ch:
			if n.PID != pid {
				continue
			}
			if n.Payload == payload {
				return before, nil
			}
			before = append(before, n.Payload)
		}
	}
}

// writeAll makes every kind of write that has an outbox row: a create, an update, a location
// rename that changes the conference, and a delete.
func writeAll(t *testing.T, store *postgres.Store) {
	t.Helper()
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, store)
	c := pgtest.MustCreateConference(t, store, loc.ID, "GopherCon")
	if _, err := store.UpdateConference(ctx, c.ID, conference.ConferencePatch{Name: ptr("Renamed")}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpdateLocation(ctx, loc.ID, conference.LocationPatch{Name: ptr("Hall B")}); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteConference(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
}

func notifyMark(t *testing.T, c bun.Conn) {
	t.Helper()
	if _, err := c.ExecContext(context.Background(), "SELECT pg_notify(?, 'mark')", changeevent.NotifyChannel); err != nil {
		t.Fatal(err)
	}
}

func TestNotifyCommitNotifiesWithEachWrite(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ch := listen(t, b.db)
	c, pid := ownConn(t, b.db)
	writeAll(t, postgres.NewStore(c))
	notifyMark(t, c)
	before, err := awaitNotify(ch, pid, "mark")
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 4 {
		t.Errorf("notifications before the mark = %q, want one per write (4)", before)
	}
}

func TestNotifyAfterNotifiesFromTheNotifier(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ch := listen(t, b.db)
	c, pid := ownConn(t, b.db)
	nc, notifierPID := ownConn(t, b.db)
	notifier := postgres.NewNotifier(nc, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); notifier.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	store, err := postgres.NewStore(c).WithNotify(postgres.NotifyAfter, notifier)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.MustCreateConference(t, store, pgtest.MustCreateLocation(t, store).ID, "GopherCon")
	if _, err := awaitNotify(ch, notifierPID, ""); err != nil {
		t.Fatalf("after a create: %v", err)
	}
	writeAll(t, store)
	if _, err := awaitNotify(ch, notifierPID, ""); err != nil {
		t.Fatalf("after more writes: %v", err)
	}
	notifyMark(t, c)
	before, err := awaitNotify(ch, pid, "mark")
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 0 {
		t.Errorf("the writes notified themselves too: %q", before)
	}
}

func TestNotifyOffNeverNotifies(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ch := listen(t, b.db)
	c, pid := ownConn(t, b.db)
	store, err := postgres.NewStore(c).WithNotify(postgres.NotifyOff, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, store)
	// The mark proves the channel works: anything the writes sent would have come before it.
	notifyMark(t, c)
	before, err := awaitNotify(ch, pid, "mark")
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 0 {
		t.Errorf("notifications with NotifyOff: %q", before)
	}
}

func TestWithNotifyRefusesWhatCannotWork(t *testing.T) {
	t.Parallel()
	store := postgres.NewStore(nil)
	if _, err := store.WithNotify(postgres.NotifyAfter, nil); err == nil {
		t.Error("NotifyAfter without a notifier was accepted")
	}
	if _, err := store.WithNotify("sometimes", nil); err == nil {
		t.Error("an unknown mode was accepted")
	}
}
