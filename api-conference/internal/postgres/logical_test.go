package postgres_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"conferencego/api-conference/internal/conference"
	"conferencego/api-conference/internal/postgres"
	"conferencego/api-conference/internal/postgres/pgtest"
	"conferencego/syncer/changeevent"
)

// TestMain removes the wal_level=logical cluster of the logical transport's tests.
func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.RemoveCluster()
	os.Exit(code)
}

// writeEverything runs every kind of conference write on store: creates, an update, an update
// that changes nothing, rejected writes, a location rename that cascades, and a delete.
func writeEverything(t *testing.T, store *postgres.Store) {
	t.Helper()
	ctx := context.Background()
	l := pgtest.MustCreateLocation(t, store)
	a := pgtest.MustCreateConference(t, store, l.ID, "Ünïcode \"quoted\" \\ conf")
	b := pgtest.MustCreateConference(t, store, l.ID, "Second")
	name := "Renamed"
	if _, err := store.UpdateConference(ctx, a.ID, conference.ConferencePatch{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpdateConference(ctx, a.ID, conference.ConferencePatch{Name: &name}); err != nil { // no change
		t.Fatal(err)
	}
	early := a.Starts.Add(-time.Hour)
	if _, err := store.UpdateConference(ctx, a.ID, conference.ConferencePatch{Ends: &early}); err == nil {
		t.Fatal("an update that ends before it starts was accepted")
	}
	missing := int64(999999)
	if _, err := store.UpdateConference(ctx, a.ID, conference.ConferencePatch{LocationID: &missing}); err == nil {
		t.Fatal("a move to an unknown location was accepted")
	}
	hall := "Hall B"
	if _, err := store.UpdateLocation(ctx, l.ID, conference.LocationPatch{Name: &hall}); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteConference(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
}

// event is what both transports must carry alike: everything but the event id, the position
// and the time.
type event struct {
	Type          string
	Conference    int64
	Version       int64
	Payload       string
	ValidEntry    bool
	UniqueEventID bool
}

// TestLogicalWritesEmitWhatTheTableWrites: with OUTBOX_TRANSPORT=logical every write path emits
// exactly the events the outbox table gets on the table transport, each a valid entry with the
// same payload bytes, and nothing for what is rejected or unchanged; the outbox table stays empty.
func TestLogicalWritesEmitWhatTheTableWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tableDB, _ := pgtest.LogicalSchema(t)
	writeEverything(t, postgres.NewStore(tableDB))
	var want []event
	rows, err := tableDB.QueryContext(ctx, "SELECT type, conference_id, version, coalesce(payload::text, '') FROM outbox ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		e := event{ValidEntry: true, UniqueEventID: true}
		if err := rows.Scan(&e.Type, &e.Conference, &e.Version, &e.Payload); err != nil {
			t.Fatal(err)
		}
		want = append(want, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// Two creates, one update, the rename's two, one delete.
	if len(want) != 6 {
		t.Fatalf("the table transport wrote %d outbox rows; want 6: %v", len(want), want)
	}

	db, name := pgtest.LogicalSchema(t)
	store, err := postgres.NewStore(db).WithLogical(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	// A second slot, with the plugin that prints messages as text, to read them here.
	peek := name + "_peek"
	if _, err := db.ExecContext(ctx, "SELECT pg_create_logical_replication_slot(?, 'test_decoding')", peek); err != nil {
		t.Fatal(err)
	}
	writeEverything(t, store)
	got := emitted(t, db, peek)
	if !slices.Equal(got, want) {
		t.Errorf("logical messages:\n%v\nwant what the outbox table holds:\n%v", got, want)
	}
	var n int
	if err := db.NewRaw("SELECT count(*) FROM outbox").Scan(ctx, &n); err != nil || n != 0 {
		t.Errorf("the outbox table holds %d rows (%v); want none on the logical transport", n, err)
	}
	// Readiness says so when the slot is gone: the events written then reach nobody.
	if err := store.Ping(ctx); err != nil {
		t.Errorf("Ping with the slot there: %v", err)
	}
	if _, err := db.ExecContext(ctx, "SELECT pg_drop_replication_slot(?)", name); err != nil {
		t.Fatal(err)
	}
	if err := store.Ping(ctx); err == nil || !strings.Contains(err.Error(), "slot") {
		t.Errorf("Ping with the slot dropped: %v; want the slot named", err)
	}
}

// emitted reads the messages of api-conference's prefix from a test_decoding slot.
func emitted(t *testing.T, db *bun.DB, slot string) []event {
	t.Helper()
	var data []string
	if err := db.NewRaw("SELECT data FROM pg_logical_slot_get_changes(?, NULL, NULL)", slot).Scan(context.Background(), &data); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	var out []event
	for i, d := range data {
		// message: transactional: 1 prefix: conferencego.change, sz: 263 content:{…}
		if !strings.HasPrefix(d, "message:") {
			continue
		}
		if !strings.HasPrefix(d, "message: transactional: 1 prefix: "+changeevent.MessagePrefix+",") {
			t.Errorf("message %q: want a transactional one of prefix %s", d, changeevent.MessagePrefix)
			continue
		}
		_, content, _ := strings.Cut(d, " content:")
		o, err := changeevent.MessageRow([]byte(content), int64(i))
		if err != nil {
			t.Fatalf("message %q: %v", content, err)
		}
		_, _, entryErr := o.Entry()
		if entryErr != nil {
			t.Errorf("message %q is not a valid entry: %v", content, entryErr)
		}
		out = append(out, event{Type: o.Type, Conference: o.ConferenceID, Version: o.Version, Payload: string(o.Payload),
			ValidEntry: entryErr == nil, UniqueEventID: !ids[o.EventID]})
		ids[o.EventID] = true
	}
	return out
}

// WithLogical refuses a server that cannot decode, and a slot name that cannot be one.
func TestWithLogicalRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t) // the shared server, with wal_level=replica
	var level string
	if err := b.db.QueryRowContext(ctx, "SHOW wal_level").Scan(&level); err != nil {
		t.Fatal(err)
	}
	if level != "logical" {
		_, err := b.store.WithLogical(ctx, "conferencego_outbox")
		if err == nil || !strings.Contains(err.Error(), "wal_level") {
			t.Errorf("WithLogical on wal_level=%s: %v; want the reason named", level, err)
		}
	}
	if _, err := b.store.WithLogical(ctx, "Bad-Slot"); err == nil {
		t.Error("WithLogical accepted slot name Bad-Slot")
	}
}
