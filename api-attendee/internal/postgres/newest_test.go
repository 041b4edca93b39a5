package postgres_test

import (
	"context"
	"testing"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/api-attendee/internal/postgres/pgtest"
)

func TestNewestConferenceVOsNewestFirstWithTombstonesAndAttendees(t *testing.T) {
	t.Parallel()
	store := setup(t)
	ctx := context.Background()
	mustApply(t, store, changes(pgtest.Created(1, 1, "One", 5), pgtest.Created(2, 1, "Two", 5), pgtest.Created(3, 1, "Three", 5)))
	mustApply(t, store, changes(pgtest.Deleted(2, 2)))
	for _, email := range []string{"a@example.com", "b@example.com"} {
		email, name := email, "A"
		if _, err := store.Register(ctx, 3, attendee.AttendeePatch{Email: &email, Name: &name}); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := store.NewestConferenceVOs(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("got %d rows, want 2 (the limit)", len(rows))
	}
	if r := rows[0]; r.ID != 3 || r.Attendees != 2 || r.Deleted || r.AppliedAt.Before(r.OccurredAt.Add(-1)) {
		t.Errorf("first row %+v: want conference 3, 2 attendees, live", r)
	}
	if r := rows[1]; r.ID != 2 || !r.Deleted || r.Version != 2 || r.Attendees != 0 {
		t.Errorf("second row %+v: want the tombstone of conference 2 at version 2", r)
	}
}
