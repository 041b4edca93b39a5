package postgres_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"conferencego/api-conference/internal/conference"
	"conferencego/api-conference/internal/postgres"
	"conferencego/api-conference/internal/postgres/pgtest"
)

// The conference reads go through the connection's prepared-statement cache even though the
// pool speaks the simple protocol: after them, the connection holds both statements, prepared
// once, and the answers are the ones the writes returned.
func TestConferenceReadsArePrepared(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	want := pgtest.MustCreateConference(t, b.store, loc.ID, "GopherCon")

	conn, err := b.db.Conn(ctx)
	if err != nil {
		t.Fatalf("conn: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	store := postgres.NewStore(conn)
	for range 3 {
		got, err := store.GetConference(ctx, want.ID)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("get (-want +got):\n%s", diff)
		}
		page, more, err := store.ListConferences(ctx, 0, 10)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if diff := cmp.Diff(want, page[0]); len(page) != 1 || more || diff != "" {
			t.Fatalf("list = %d conferences, more %v (-want +got first):\n%s", len(page), more, diff)
		}
	}
	var prepared []string
	if err := conn.NewRaw(`SELECT statement FROM pg_prepared_statements
		WHERE statement LIKE 'SELECT c.id, c.name%' ORDER BY statement`).Scan(ctx, &prepared); err != nil {
		t.Fatalf("read pg_prepared_statements: %v", err)
	}
	if len(prepared) != 2 {
		t.Fatalf("prepared conference statements = %q, want the get and the list", prepared)
	}
}

// An update that changes nothing reads the conference back inside its transaction, on the
// transaction's own connection: the same conference, at the same version, and no event.
func TestUnchangedUpdateReadsInsideTheTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	loc := pgtest.MustCreateLocation(t, b.store)
	want := pgtest.MustCreateConference(t, b.store, loc.ID, "GopherCon")

	got, err := b.store.UpdateConference(context.Background(), want.ID, conference.ConferencePatch{Name: ptr(want.Name)})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("unchanged update (-want +got):\n%s", diff)
	}
	if events := outbox(t, b.store, want.ID); len(events) != 1 {
		t.Fatalf("outbox = %q, want only the create", events)
	}
}

// The list with its marker answers what the marker and the list answer one after the other,
// for a page with rows and for one past the end, which has no row to carry the marker.
func TestListConferencesMarked(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	var ids []int64
	for _, name := range []string{"A", "B", "C"} {
		ids = append(ids, pgtest.MustCreateConference(t, b.store, loc.ID, name).ID)
	}
	for _, after := range []int64{0, ids[0], ids[2]} {
		m, got, more, err := b.store.ListConferencesMarked(ctx, after, 1)
		if err != nil {
			t.Fatal(err)
		}
		want, wantMore, err := b.store.ListConferences(ctx, after, 1)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" || more != wantMore {
			t.Errorf("after %d: more %v, want %v (-want +got):\n%s", after, more, wantMore, diff)
		}
		if wantM := marker(t, b.store); m != wantM {
			t.Errorf("after %d: marker %d, want %d", after, m, wantM)
		}
	}
}
