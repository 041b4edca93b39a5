package postgres_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/api-attendee/internal/postgres"
	"conferencego/api-attendee/internal/postgres/pgtest"
	"conferencego/syncer/changeevent"
)

// The writes of the apply path go through the connection's prepared-statement cache even
// though the pool speaks the simple protocol, and a batch of any size, in a transaction or
// not, is the one upsert text: after batches of 1, 3 and 700 changes (two chunks), a
// hand-over and a repair, the connection holds each statement exactly once.
func TestApplyWritesArePrepared(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewSchema(t)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	store := postgres.NewStore(conn)

	var big []changeevent.Event
	for id := int64(1); id <= 700; id++ {
		big = append(big, pgtest.Created(id, 2, "Big", 1))
	}
	mustApply(t, store, changes(pgtest.Created(1, 1, "A", 1)))
	mustApply(t, store, changes(pgtest.Created(1, 2, "A", 1), pgtest.Created(2, 1, "B", 1), pgtest.Deleted(3, 1)))
	if res := mustApply(t, store, changes(big...)); res.Applied != 699 {
		t.Errorf("large batch applied %d, want 699 (conference 1 is at version 2 already)", res.Applied)
	}
	if _, err := store.ApplyHandover(ctx, "s", changes(pgtest.Created(4, 3, "D", 1))); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Repair(ctx, "s", []attendee.Repair{{ConferenceID: 4, Replaces: 3}}); err != nil {
		t.Fatal(err)
	}
	if got := state(t, store, 3); got != (voState{Version: 2, Name: "Big", MaxAttendees: 1}) {
		t.Errorf("conference 3 = %+v: the update after its tombstone is version 2, and wins", got)
	}

	var prepared []string
	if err := conn.NewRaw(`SELECT split_part(statement, ' ', 1) || ' ' || split_part(statement, ' ', 2) || ' ' || split_part(statement, ' ', 3)
		FROM pg_prepared_statements ORDER BY 1`).Scan(ctx, &prepared); err != nil {
		t.Fatalf("read pg_prepared_statements: %v", err)
	}
	want := []string{"INSERT INTO conference_vos", "INSERT INTO source_binding", "SELECT source FROM", "UPDATE conference_vos AS"}
	if diff := cmp.Diff(want, prepared); diff != "" {
		t.Errorf("prepared statements (-want +got):\n%s", diff)
	}
}
