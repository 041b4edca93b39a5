package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/uptrace/bun"

	"conferencego/api-conference/internal/conference"
	"conferencego/api-conference/internal/postgres"
	"conferencego/api-conference/internal/postgres/pgtest"
	"conferencego/syncer/changeevent"
)

type bundle struct {
	db    *bun.DB
	store *postgres.Store
}

func setup(t *testing.T) bundle {
	t.Helper()
	db, _ := pgtest.NewSchema(t)
	return bundle{db: db, store: postgres.NewStore(db)}
}

func ptr[T any](v T) *T { return &v }

// outbox returns every outbox row of conference id as (type, version) pairs, oldest first.
func outbox(t *testing.T, store *postgres.Store, id int64) []string {
	t.Helper()
	events, err := store.ReadOutbox(context.Background(), 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range events {
		if e.Event.ConferenceID == id {
			out = append(out, fmt.Sprintf("%s v%d", e.Event.Type, e.Event.Version))
		}
	}
	return out
}

func marker(t *testing.T, store *postgres.Store) int64 {
	t.Helper()
	m, err := store.ChangeMarker(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestStatesSeeded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	states, err := b.store.ListStates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 51 {
		t.Fatalf("%d states, want 50 and DC", len(states))
	}
	if states[0] != (conference.State{Abbreviation: "AL", Name: "Alabama"}) {
		t.Errorf("first state = %+v", states[0])
	}
}

func TestOutboxOneRowPerCommittedChange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	m0 := marker(t, b.store)
	c := pgtest.MustCreateConference(t, b.store, loc.ID, "GopherCon")
	if c.Version != 1 {
		t.Errorf("new conference has version %d", c.Version)
	}
	if _, err := b.store.UpdateConference(ctx, c.ID, conference.ConferencePatch{Name: ptr("GopherCon EU")}); err != nil {
		t.Fatal(err)
	}
	// Renaming the location changes what the conference publishes.
	if _, err := b.store.UpdateLocation(ctx, loc.ID, conference.LocationPatch{Name: ptr("Hall B")}); err != nil {
		t.Fatal(err)
	}
	// Changing only the room count does not.
	if _, err := b.store.UpdateLocation(ctx, loc.ID, conference.LocationPatch{RoomCount: ptr(40)}); err != nil {
		t.Fatal(err)
	}
	if err := b.store.DeleteConference(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	want := []string{"conference.created v1", "conference.updated v2", "conference.updated v3", "conference.deleted v4"}
	if diff := cmp.Diff(want, outbox(t, b.store, c.ID)); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
	if got := marker(t, b.store) - m0; got != 4 {
		t.Errorf("change marker grew by %d, want 4", got)
	}

	events, err := b.store.ReadOutbox(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	upd := events[2].Event
	wantData := &changeevent.Conference{
		ID: c.ID, Href: changeevent.Href(c.ID), Name: "GopherCon EU", Starts: c.Starts, Ends: c.Ends, MaxAttendees: 100,
		Location: changeevent.Location{Name: "Hall B", City: "Austin", State: "TX"},
	}
	if diff := cmp.Diff(wantData, upd.Data); diff != "" {
		t.Errorf("payload after the location rename (-want +got):\n%s", diff)
	}
	if events[3].Event.Data != nil {
		t.Errorf("delete carries data %+v", events[3].Event.Data)
	}
	seen := map[string]bool{}
	for _, e := range events {
		if seen[e.Event.ID] {
			t.Errorf("event id %s used twice", e.Event.ID)
		}
		seen[e.Event.ID] = true
	}
}

func TestRejectedAndRolledBackWritesLeaveNoOutboxRow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	c := pgtest.MustCreateConference(t, b.store, loc.ID, "GopherCon")
	before := outbox(t, b.store, c.ID)
	m0 := marker(t, b.store)

	// Rejected by validation against the stored row.
	_, err := b.store.UpdateConference(ctx, c.ID, conference.ConferencePatch{Ends: ptr(c.Starts.Add(-1))})
	if !errors.Is(err, conference.ErrInvalid) {
		t.Fatalf("update with ends before starts: err = %v, want ErrInvalid", err)
	}
	// Rejected because the new location does not exist.
	_, err = b.store.UpdateConference(ctx, c.ID, conference.ConferencePatch{LocationID: ptr(int64(999999))})
	if !errors.Is(err, conference.ErrInvalid) {
		t.Fatalf("update to unknown location: err = %v, want ErrInvalid", err)
	}
	// Committed inside a transaction that is then rolled back.
	abort := errors.New("abort")
	err = b.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := postgres.NewStore(tx).UpdateConference(ctx, c.ID, conference.ConferencePatch{Name: ptr("Renamed")}); err != nil {
			return err
		}
		return abort
	})
	if !errors.Is(err, abort) {
		t.Fatalf("transaction: %v", err)
	}
	// Deleting a location that still has conferences is a conflict and changes nothing.
	if err := b.store.DeleteLocation(ctx, loc.ID); !errors.Is(err, conference.ErrConflict) {
		t.Fatalf("delete location with conferences: err = %v, want ErrConflict", err)
	}

	if diff := cmp.Diff(before, outbox(t, b.store, c.ID)); diff != "" {
		t.Errorf("outbox changed (-before +after):\n%s", diff)
	}
	if m := marker(t, b.store); m != m0 {
		t.Errorf("change marker moved from %d to %d", m0, m)
	}
	got, err := b.store.GetConference(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.Name != "GopherCon" {
		t.Errorf("conference changed: %+v", got)
	}
}

func TestConcurrentUpdatesGetConsecutiveVersions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	c := pgtest.MustCreateConference(t, b.store, loc.ID, "GopherCon")

	const n = 50
	versions := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got, err := b.store.UpdateConference(ctx, c.ID, conference.ConferencePatch{MaxAttendees: ptr(1000 + i)})
			versions[i], errs[i] = got.Version, err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	slices.Sort(versions)
	var want, wantOutbox []int64
	for v := int64(2); v <= n+1; v++ {
		want = append(want, v)
	}
	if diff := cmp.Diff(want, versions); diff != "" {
		t.Errorf("versions returned (-want +got):\n%s", diff)
	}
	events, err := b.store.ReadOutbox(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, e := range events {
		if e.Event.Type == changeevent.Updated {
			got = append(got, e.Event.Version)
		}
	}
	slices.Sort(got)
	wantOutbox = want
	if diff := cmp.Diff(wantOutbox, got); diff != "" {
		t.Errorf("outbox versions (-want +got):\n%s", diff)
	}
}

func TestDeleteConferenceRemovesPresentations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	c := pgtest.MustCreateConference(t, b.store, loc.ID, "GopherCon")
	p, err := b.store.CreatePresentation(ctx, c.ID, conference.PresentationPatch{
		PresenterName: ptr("Ada"), PresenterEmail: ptr("ada@example.com"), Title: ptr("Go"), Synopsis: ptr("Why"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.store.DeleteConference(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.GetPresentation(ctx, p.ID); !errors.Is(err, conference.ErrNotFound) {
		t.Errorf("presentation after its conference's delete: err = %v, want ErrNotFound", err)
	}
	if err := b.store.DeleteConference(ctx, c.ID); !errors.Is(err, conference.ErrNotFound) {
		t.Errorf("second delete: err = %v, want ErrNotFound", err)
	}
	if err := b.store.DeleteLocation(ctx, loc.ID); err != nil {
		t.Errorf("delete the now empty location: %v", err)
	}
}

func TestConcurrentSubmissionsRespectMaxPresentations(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	c := pgtest.MustCreateConference(t, b.store, loc.ID, "GopherCon") // max_presentations 2
	const n = 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = b.store.CreatePresentation(ctx, c.ID, conference.PresentationPatch{
				PresenterName: ptr("Ada"), PresenterEmail: ptr("ada@example.com"), Title: ptr(fmt.Sprint("Talk ", i)), Synopsis: ptr(""),
			})
		})
	}
	wg.Wait()
	var ok, conflicts int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, conference.ErrConflict):
			conflicts++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 2 || conflicts != n-2 {
		t.Errorf("%d accepted and %d conflicts, want 2 and %d", ok, conflicts, n-2)
	}
}

func TestMigrateTwiceAtOnce(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			db, err := postgres.Open(ctx, url, postgres.Schema)
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			errs[i] = postgres.Migrate(ctx, db, postgres.Schema)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: %v", i, err)
		}
	}
	db, err := postgres.Open(ctx, url, postgres.Schema)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	states, err := postgres.NewStore(db).ListStates(ctx)
	if err != nil || len(states) != 51 {
		t.Errorf("after concurrent migrations: %d states, err %v", len(states), err)
	}
}

func TestUpdateThatChangesNothingIsNotAChange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	c := pgtest.MustCreateConference(t, b.store, loc.ID, "GopherCon")
	m0 := marker(t, b.store)
	got, err := b.store.UpdateConference(ctx, c.ID, conference.ConferencePatch{
		Name: ptr(" GopherCon "), Starts: ptr(c.Starts.In(time.FixedZone("CET", 3600))), MaxAttendees: ptr(c.MaxAttendees),
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("a no-op update changed the conference (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"conference.created v1"}, outbox(t, b.store, c.ID)); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
	if m := marker(t, b.store); m != m0 {
		t.Errorf("change marker moved from %d to %d", m0, m)
	}
}

func TestPruneOutboxRemovesOnlyOldRows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	old := pgtest.MustCreateConference(t, b.store, loc.ID, "Old")
	if _, err := b.db.ExecContext(ctx, "UPDATE outbox SET occurred_at = now() - interval '2 hours'"); err != nil {
		t.Fatal(err)
	}
	fresh := pgtest.MustCreateConference(t, b.store, loc.ID, "Fresh")
	n, err := b.store.PruneOutbox(ctx, time.Hour, 100)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("pruned %d rows, want 1", n)
	}
	if got := outbox(t, b.store, old.ID); len(got) != 0 {
		t.Errorf("old row kept: %v", got)
	}
	if got := outbox(t, b.store, fresh.ID); len(got) != 1 {
		t.Errorf("fresh row pruned: %v", got)
	}
}
