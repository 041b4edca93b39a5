package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/api-attendee/internal/postgres"
	"conferencego/api-attendee/internal/postgres/pgtest"
	"conferencego/syncer/changeevent"
)

var ignoreLags = cmpopts.IgnoreFields(attendee.ApplyResult{}, "Lags")

func setup(t *testing.T) *postgres.Store {
	t.Helper()
	db, _ := pgtest.NewSchema(t)
	return postgres.NewStore(db)
}

// voState is what a test checks of a stored conference: the rest is timestamps.
type voState struct {
	Name         string
	MaxAttendees int
	Version      int64
	Deleted      bool
}

func state(t *testing.T, store *postgres.Store, id int64) voState {
	t.Helper()
	c, err := store.GetConferenceVO(context.Background(), id)
	if err != nil {
		t.Fatalf("get conference %d: %v", id, err)
	}
	return voState{Name: c.Name, MaxAttendees: c.MaxAttendees, Version: c.Version, Deleted: c.Deleted}
}

func mustApply(t *testing.T, store *postgres.Store, b attendee.Batch) attendee.ApplyResult {
	t.Helper()
	res, err := store.ApplyChanges(context.Background(), b)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

func changes(events ...changeevent.Event) attendee.Batch { return pgtest.Batch(events...) }

func TestApplyChangesEndsAtNewest(t *testing.T) {
	t.Parallel()
	c := pgtest.Created
	d := pgtest.Deleted
	tests := []struct {
		name    string
		batches []attendee.Batch
		want    map[int64]voState
	}{
		{
			name:    "in order",
			batches: []attendee.Batch{changes(c(1, 1, "A1", 10), c(1, 2, "A2", 20), c(1, 3, "A3", 30))},
			want:    map[int64]voState{1: {Name: "A3", MaxAttendees: 30, Version: 3}},
		},
		{
			name:    "duplicates in one batch",
			batches: []attendee.Batch{changes(c(1, 1, "A1", 10), c(1, 1, "A1", 10), c(1, 2, "A2", 20), c(1, 2, "A2", 20))},
			want:    map[int64]voState{1: {Name: "A2", MaxAttendees: 20, Version: 2}},
		},
		{
			name:    "duplicates across batches",
			batches: []attendee.Batch{changes(c(1, 2, "A2", 20)), changes(c(1, 2, "A2", 20)), changes(c(1, 1, "A1", 10))},
			want:    map[int64]voState{1: {Name: "A2", MaxAttendees: 20, Version: 2}},
		},
		{
			name:    "reversed order in one batch",
			batches: []attendee.Batch{changes(c(1, 3, "A3", 30), c(1, 2, "A2", 20), c(1, 1, "A1", 10))},
			want:    map[int64]voState{1: {Name: "A3", MaxAttendees: 30, Version: 3}},
		},
		{
			name:    "reversed order across batches",
			batches: []attendee.Batch{changes(c(1, 3, "A3", 30)), changes(c(1, 2, "A2", 20)), changes(c(1, 1, "A1", 10))},
			want:    map[int64]voState{1: {Name: "A3", MaxAttendees: 30, Version: 3}},
		},
		{
			name:    "delete then older update",
			batches: []attendee.Batch{changes(c(1, 1, "A1", 10)), changes(d(1, 3)), changes(c(1, 2, "A2", 20))},
			want:    map[int64]voState{1: {Name: "A1", MaxAttendees: 10, Version: 3, Deleted: true}},
		},
		{
			name:    "delete of a conference never seen, then its older updates",
			batches: []attendee.Batch{changes(d(1, 4)), changes(c(1, 1, "A1", 10), c(1, 3, "A3", 30))},
			want:    map[int64]voState{1: {Version: 4, Deleted: true}},
		},
		{
			name:    "delete and older update in one batch",
			batches: []attendee.Batch{changes(c(1, 2, "A2", 20), d(1, 3), c(1, 1, "A1", 10))},
			want:    map[int64]voState{1: {Version: 3, Deleted: true}},
		},
		{
			name: "mixed batch of several conferences",
			batches: []attendee.Batch{
				changes(c(2, 1, "B1", 5), c(3, 1, "C1", 5)),
				changes(
					c(1, 2, "A2", 20), c(2, 3, "B3", 7), d(3, 2), c(1, 1, "A1", 10), c(2, 2, "B2", 6),
					c(4, 1, "D1", 1), c(1, 2, "A2", 20), c(3, 1, "C1", 5), d(5, 2), c(5, 1, "E1", 1),
				),
			},
			want: map[int64]voState{
				1: {Name: "A2", MaxAttendees: 20, Version: 2},
				2: {Name: "B3", MaxAttendees: 7, Version: 3},
				3: {Name: "C1", MaxAttendees: 5, Version: 2, Deleted: true},
				4: {Name: "D1", MaxAttendees: 1, Version: 1},
				5: {Version: 2, Deleted: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := setup(t)
			for _, b := range tt.batches {
				mustApply(t, store, b)
			}
			got := map[int64]voState{}
			for id := range tt.want {
				got[id] = state(t, store, id)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("conference_vos (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyChangesCountsAndLag(t *testing.T) {
	t.Parallel()
	store := setup(t)
	res := mustApply(t, store, changes(pgtest.Created(1, 1, "A", 1), pgtest.Created(2, 1, "B", 1), pgtest.Created(1, 1, "A", 1)))
	if len(res.Lags) != 2 || res.Lags[0] < 0 || res.Lags[0] > time.Minute {
		t.Errorf("lags %v, want two small non-negative ones", res.Lags)
	}
	if diff := cmp.Diff(attendee.ApplyResult{Changes: 2, Applied: 2}, res, ignoreLags); diff != "" {
		t.Errorf("first apply (-want +got):\n%s", diff)
	}
	res = mustApply(t, store, changes(pgtest.Created(1, 1, "A", 1), pgtest.Created(2, 2, "B", 1)))
	if diff := cmp.Diff(attendee.ApplyResult{Changes: 2, Applied: 1}, res, ignoreLags); diff != "" {
		t.Errorf("second apply (-want +got):\n%s", diff)
	}
	c, err := store.GetConferenceVO(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if c.OccurredAt.IsZero() || c.AppliedAt.Before(c.OccurredAt.Add(-time.Minute)) {
		t.Errorf("occurred_at %v, applied_at %v: want both set, applied after occurred", c.OccurredAt, c.AppliedAt)
	}
	if c.ImportHref != "/api/conferences/2/" {
		t.Errorf("import_href = %q", c.ImportHref)
	}
}

func TestHandoverBindsTheCopyToItsSource(t *testing.T) {
	t.Parallel()
	store := setup(t)
	ctx := context.Background()
	c := pgtest.Created
	if _, err := store.ApplyHandover(ctx, "source-a", changes(c(1, 1, "A", 1))); err != nil {
		t.Fatal(err)
	}
	if src, _, err := store.Binding(ctx); err != nil || src != "source-a" {
		t.Fatalf("binding = %q, %v; want source-a", src, err)
	}
	_, err := store.ApplyHandover(ctx, "source-b", changes(c(1, 2, "From B", 1), c(2, 1, "B", 1)))
	if !errors.Is(err, attendee.ErrSourceMismatch) || !errors.Is(err, attendee.ErrConflict) {
		t.Fatalf("hand-over from another source: err = %v, want ErrSourceMismatch", err)
	}
	if got := state(t, store, 1); got.Name != "A" {
		t.Errorf("a refused hand-over changed conference 1: %+v", got)
	}
	if _, err := store.GetConferenceVO(ctx, 2); !errors.Is(err, attendee.ErrNotFound) {
		t.Errorf("a refused hand-over created conference 2: %v", err)
	}
	if old, err := store.Unbind(ctx); err != nil || old != "source-a" {
		t.Fatalf("unbind = %q, %v", old, err)
	}
	if _, err := store.ApplyHandover(ctx, "source-b", changes(c(2, 1, "B", 1))); err != nil {
		t.Fatalf("after unbinding, the new source is refused: %v", err)
	}
	if src, _, _ := store.Binding(ctx); src != "source-b" {
		t.Errorf("binding = %q, want source-b", src)
	}
}

func TestRepairLetsTheSourceWin(t *testing.T) {
	t.Parallel()
	c := pgtest.Created
	t.Run("a copy ahead of the source goes back to it", func(t *testing.T) {
		t.Parallel()
		store := setup(t)
		ctx := context.Background()
		mustApply(t, store, changes(c(1, 1, "A", 1), pgtest.Deleted(2, 1<<62), c(3, 9, "Ahead", 1)))
		live, three := c(2, 3, "Live at the source", 5), c(3, 4, "Behind", 1)
		res, err := store.Repair(ctx, "s", []attendee.Repair{
			{ConferenceID: 2, Replaces: 1 << 62, Change: pgtest.Change(live)},
			{ConferenceID: 3, Replaces: 8, Change: pgtest.Change(three)}, // stale: the copy holds 9, nothing happens
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Applied != 1 {
			t.Errorf("applied %d repairs, want 1", res.Applied)
		}
		if got := state(t, store, 2); got.Deleted || got.Version != 3 || got.Name != "Live at the source" {
			t.Errorf("conference 2 after repair: %+v", got)
		}
		if got := state(t, store, 3); got.Version != 9 {
			t.Errorf("a repair whose version no longer holds changed conference 3: %+v", got)
		}
	})
	t.Run("a conference the source does not know becomes a version-0 tombstone that the source outranks", func(t *testing.T) {
		t.Parallel()
		store := setup(t)
		ctx := context.Background()
		mustApply(t, store, changes(c(7, 1<<40, "Forged", 1)))
		if _, err := store.Repair(ctx, "s", []attendee.Repair{{ConferenceID: 7, Replaces: 1 << 40}}); err != nil {
			t.Fatal(err)
		}
		if got := state(t, store, 7); !got.Deleted || got.Version != 0 {
			t.Errorf("conference 7 after repair: %+v, want a version-0 tombstone", got)
		}
		mustApply(t, store, changes(c(7, 1, "Created at last", 1)))
		if got := state(t, store, 7); got.Deleted || got.Name != "Created at last" {
			t.Errorf("conference 7 after its creation: %+v", got)
		}
	})
	t.Run("bad repairs are refused whole", func(t *testing.T) {
		t.Parallel()
		store := setup(t)
		ctx := context.Background()
		mustApply(t, store, changes(c(1, 5, "A", 1)))
		other := c(2, 1, "Other", 1)
		for name, rs := range map[string][]attendee.Repair{
			"zero id":           {{ConferenceID: 0, Replaces: 5}},
			"negative replaces": {{ConferenceID: 1, Replaces: -1}},
			"twice":             {{ConferenceID: 1, Replaces: 5}, {ConferenceID: 1, Replaces: 5}},
			"another id":        {{ConferenceID: 1, Replaces: 5, Change: pgtest.Change(other)}},
		} {
			if _, err := store.Repair(ctx, "s", rs); !errors.Is(err, attendee.ErrInvalid) {
				t.Errorf("%s: err = %v, want ErrInvalid", name, err)
			}
		}
		if got := state(t, store, 1); got.Version != 5 || got.Deleted {
			t.Errorf("refused repairs changed conference 1: %+v", got)
		}
	})
}

func TestRegister(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	email, name := "ada@example.com", "Ada Lovelace"
	patch := attendee.AttendeePatch{Email: &email, Name: &name}

	t.Run("rules", func(t *testing.T) {
		t.Parallel()
		store := setup(t)
		pgtest.MustConference(t, store, 1, 2)
		pgtest.MustConference(t, store, 2, 1)
		mustApply(t, store, changes(pgtest.Deleted(2, 2)))

		a, err := store.Register(ctx, 1, patch)
		if err != nil {
			t.Fatalf("register: %v", err)
		}
		want := attendee.Attendee{
			ID: a.ID, ConferenceID: 1, Email: email, Name: name, Created: a.Created,
			Conference: attendee.ConferenceRef{Name: "Conference 1", ImportHref: "/api/conferences/1/"},
		}
		if diff := cmp.Diff(want, a); diff != "" {
			t.Errorf("registered (-want +got):\n%s", diff)
		}
		upper := "ADA@example.com"
		other, bob := "bob@example.com", "Bob"
		third, cy := "cy@example.com", "Cy"
		for _, tc := range []struct {
			name         string
			conferenceID int64
			patch        attendee.AttendeePatch
			want         error
		}{
			{"unknown conference", 99, patch, attendee.ErrNotFound},
			{"deleted conference", 2, patch, attendee.ErrConflict},
			{"same e-mail again", 1, patch, attendee.ErrConflict},
			{"same e-mail in other case", 1, attendee.AttendeePatch{Email: &upper, Name: &name}, attendee.ErrConflict},
			{"missing name", 1, attendee.AttendeePatch{Email: &other}, attendee.ErrInvalid},
			{"second place", 1, attendee.AttendeePatch{Email: &other, Name: &bob}, nil},
			{"full", 1, attendee.AttendeePatch{Email: &third, Name: &cy}, attendee.ErrConflict},
		} {
			_, err := store.Register(ctx, tc.conferenceID, tc.patch)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
			}
		}
	})

	t.Run("40 concurrent registrations fill 10 places", func(t *testing.T) {
		t.Parallel()
		store := setup(t)
		pgtest.MustConference(t, store, 7, 10)
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			ok, full int
			other    []error
		)
		for i := range 40 {
			wg.Go(func() {
				email, name := fmt.Sprintf("p%d@example.com", i), fmt.Sprintf("Person %d", i)
				_, err := store.Register(ctx, 7, attendee.AttendeePatch{Email: &email, Name: &name})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, attendee.ErrConflict):
					full++
				default:
					other = append(other, err)
				}
			})
		}
		wg.Wait()
		if ok != 10 || full != 30 || len(other) > 0 {
			t.Errorf("registered %d, refused as full %d, other errors %v; want 10, 30, none", ok, full, other)
		}
		list, _, err := store.ListAttendees(ctx, 7, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 10 {
			t.Errorf("conference 7 has %d attendees, want 10", len(list))
		}
	})
}

func TestAttendeeLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := setup(t)
	pgtest.MustConference(t, store, 1, 5)
	email, name := "ada@example.com", "Ada"
	a, err := store.Register(ctx, 1, attendee.AttendeePatch{Email: &email, Name: &name})
	if err != nil {
		t.Fatal(err)
	}

	company := "Analytical Engines"
	a, err = store.UpdateAttendee(ctx, a.ID, attendee.AttendeePatch{CompanyName: &company})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if a.CompanyName != company || a.Name != name {
		t.Errorf("after update: %+v", a)
	}

	for i, wantNew := range []bool{true, false} {
		got, created, err := store.CreateBadge(ctx, a.ID)
		if err != nil || created != wantNew || !got.HasBadge {
			t.Errorf("badge call %d: created %v, has_badge %v, err %v; want created %v", i+1, created, got.HasBadge, err, wantNew)
		}
	}
	if _, _, err := store.CreateBadge(ctx, a.ID+100); !errors.Is(err, attendee.ErrNotFound) {
		t.Errorf("badge of an unknown attendee: err = %v, want ErrNotFound", err)
	}

	// Attendees of a deleted conference keep it, with its last known name.
	mustApply(t, store, changes(pgtest.Deleted(1, 2)))
	got, err := store.GetAttendee(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Conference.Name != "Conference 1" {
		t.Errorf("attendee of a deleted conference shows conference %+v", got.Conference)
	}
	if list, _, err := store.ListAttendees(ctx, 1, 0, 100); err != nil || len(list) != 1 {
		t.Errorf("attendees of the deleted conference: %d, %v; want 1", len(list), err)
	}
	if _, _, err := store.ListAttendees(ctx, 2, 0, 100); !errors.Is(err, attendee.ErrNotFound) {
		t.Errorf("attendees of an unknown conference: err = %v, want ErrNotFound", err)
	}

	if err := store.DeleteAttendee(ctx, a.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := store.DeleteAttendee(ctx, a.ID); !errors.Is(err, attendee.ErrNotFound) {
		t.Errorf("second delete: err = %v, want ErrNotFound", err)
	}
	if _, err := store.UpdateAttendee(ctx, a.ID, attendee.AttendeePatch{Name: &name}); !errors.Is(err, attendee.ErrNotFound) {
		t.Errorf("update of a deleted attendee: err = %v, want ErrNotFound", err)
	}
}

func TestUpdateAttendeeToTakenEmailConflicts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := setup(t)
	pgtest.MustConference(t, store, 1, 5)
	e1, e2, n := "a@example.com", "b@example.com", "N"
	if _, err := store.Register(ctx, 1, attendee.AttendeePatch{Email: &e1, Name: &n}); err != nil {
		t.Fatal(err)
	}
	b, err := store.Register(ctx, 1, attendee.AttendeePatch{Email: &e2, Name: &n})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpdateAttendee(ctx, b.ID, attendee.AttendeePatch{Email: &e1}); !errors.Is(err, attendee.ErrConflict) {
		t.Errorf("err = %v, want ErrConflict", err)
	}
}

// A batch larger than one INSERT statement's chunk is still one transaction.
func TestApplyChangesLargeBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := pgtest.NewSchema(t)
	store := postgres.NewStore(db)
	const n = 1234
	batch := func(version int64, name func(id int64) string) []changeevent.Event {
		var events []changeevent.Event
		for id := int64(1); id <= n; id++ {
			events = append(events, pgtest.Created(id, version, name(id), 1))
		}
		return events
	}
	res := mustApply(t, store, changes(append(batch(2, func(int64) string { return "V2" }), batch(1, func(int64) string { return "V1" })...)...))
	if res.Changes != n || res.Applied != n {
		t.Errorf("result %+v, want %d changes applied", res, n)
	}

	// A failure in the database in the last chunk undoes the chunks before it.
	if _, err := db.ExecContext(ctx, `CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.name = 'Boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$;
		CREATE TRIGGER refuse_boom BEFORE UPDATE ON conference_vos FOR EACH ROW EXECUTE FUNCTION refuse_boom()`); err != nil {
		t.Fatal(err)
	}
	v3 := batch(3, func(id int64) string {
		if id == n {
			return "Boom"
		}
		return "V3"
	})
	if _, err := store.ApplyChanges(ctx, changes(v3...)); err == nil {
		t.Fatal("a batch failing in its last chunk was applied")
	}
	if got := state(t, store, 1); got.Version != 2 {
		t.Errorf("conference 1 at version %d after a failed batch, want 2: the first chunk was kept", got.Version)
	}

	// The same, as one hand-over from a source.
	res, err := store.ApplyHandover(ctx, "s", changes(v3[:n-1]...))
	if err != nil || res.Applied != n-1 {
		t.Errorf("hand-over result %+v (%v): want %d applied", res, err, n-1)
	}
	live, _, err := store.ListConferenceVOs(ctx, 0, 100_000)
	if err != nil || len(live) != n {
		t.Errorf("%d live conferences (%v), want %d: nothing is tombstoned for its absence", len(live), err, n)
	}
	copies, err := store.ListConferenceVOsWithTombstones(ctx, 10, 7)
	if err != nil || len(copies) != 7 || copies[0].ID != 11 {
		t.Errorf("a page of copies after 10: %d rows from %v (%v), want 7 from 11", len(copies), copies, err)
	}
}
