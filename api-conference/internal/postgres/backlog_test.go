package postgres_test

import (
	"context"
	"testing"

	"conferencego/api-conference/internal/postgres/pgtest"
)

// TestOutboxBacklogCountsUpToItsCap checks migration 0008's function, through which the
// syncer, which may not read the outbox, reports how much of it waits.
func TestOutboxBacklogCountsUpToItsCap(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	backlog := func(limit int) int64 {
		t.Helper()
		var n int64
		if err := b.db.QueryRowContext(ctx, "SELECT outbox_backlog(?)", limit).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := backlog(100); n != 0 {
		t.Fatalf("empty outbox: backlog %d", n)
	}
	loc := pgtest.MustCreateLocation(t, b.store)
	for _, name := range []string{"A", "B", "C"} {
		pgtest.MustCreateConference(t, b.store, loc.ID, name)
	}
	if n := backlog(100); n != 3 {
		t.Errorf("after three creates: backlog %d, want 3", n)
	}
	if n := backlog(2); n != 2 {
		t.Errorf("with cap 2: backlog %d, want 2", n)
	}
}
