package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"conferencego/api-conference/internal/conference"
	"conferencego/api-conference/internal/postgres"
	"conferencego/api-conference/internal/postgres/pgtest"
	"conferencego/syncer/changeevent"
)

// The outbox payload of a create and an update is built in SQL; it must be what
// changeevent.MarshalData makes of Conference.Payload, for values that JSON and times format
// in more than one way: escapes, non-ASCII, fractions of a second with and without trailing
// zeros, whole seconds, dates.
func TestWritePayloadIsMarshalData(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc, err := b.store.CreateLocation(ctx, conference.LocationPatch{
		Name: ptr(`Hall "B" <&> \ ü 東京`), City: ptr("Zürich\ttab"), RoomCount: ptr(3), State: ptr("TX"),
	})
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) *time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	for i, times := range [][2]string{
		{"2027-03-01T00:00:00Z", "2027-03-01T00:00:00Z"},
		{"1900-01-01T09:30:00.5+02:00", "9999-12-31T23:59:59.999999Z"},
		{"2027-03-01T12:00:00.120Z", "2027-03-02T12:00:00.000001Z"},
		{"2027-03-01T12:00:10Z", "2027-03-02T12:00:00.1000009Z"},
	} {
		c, err := b.store.CreateConference(ctx, conference.ConferencePatch{
			Name: ptr(fmt.Sprintf("Conf %d \u2028 \"quoted\" </script>", i)), Starts: at(times[0]), Ends: at(times[1]),
			MaxPresentations: ptr(1), MaxAttendees: ptr(1_000_000), LocationID: &loc.ID,
		})
		if err != nil {
			t.Fatalf("create %v: %v", times, err)
		}
		samePayload(t, b, c)
		u, err := b.store.UpdateConference(ctx, c.ID, conference.ConferencePatch{Name: ptr("Ünïcode ✓ " + c.Name), Ends: at(times[1])})
		if err != nil {
			t.Fatalf("update %v: %v", times, err)
		}
		samePayload(t, b, u)
	}
}

// samePayload checks that the newest outbox row of c carries MarshalData(c.Payload()), as
// jsonb (the relay reads payload as jsonb gives it back).
func samePayload(t *testing.T, b bundle, c conference.Conference) {
	t.Helper()
	want, err := changeevent.MarshalData(c.Payload())
	if err != nil {
		t.Fatal(err)
	}
	var got, wantText string
	if err := b.db.NewRaw(`SELECT payload::text, ?::jsonb::text FROM outbox WHERE conference_id = ? AND version = ?`,
		string(want), c.ID, c.Version).Scan(context.Background(), &got, &wantText); err != nil {
		t.Fatalf("read outbox row of conference %d v%d: %v", c.ID, c.Version, err)
	}
	if got != wantText {
		t.Errorf("payload of conference %d v%d:\n got %s\nwant %s", c.ID, c.Version, got, wantText)
	}
}

// A PUT's result is validated against the row it changes: a new ends before the stored
// starts, or a move to a location that does not exist, is refused naming the field, and
// changes nothing.
func TestUpdateValidatesAgainstTheStoredRow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	c := pgtest.MustCreateConference(t, b.store, loc.ID, "GopherCon")
	for name, tc := range map[string]struct {
		patch conference.ConferencePatch
		field string
	}{
		"ends before stored starts": {conference.ConferencePatch{Ends: ptr(c.Starts.Add(-time.Hour))}, "ends"},
		"starts after stored ends":  {conference.ConferencePatch{Starts: ptr(c.Ends.Add(time.Hour))}, "ends"},
		"unknown location":          {conference.ConferencePatch{LocationID: ptr(int64(999999))}, "location"},
	} {
		_, err := b.store.UpdateConference(ctx, c.ID, tc.patch)
		var v *conference.ValidationError
		if !errors.As(err, &v) || len(v.Fields) != 1 || v.Fields[0].Field != tc.field {
			t.Errorf("%s: err = %v, want a validation error of %s", name, err, tc.field)
		}
	}
	if _, err := b.store.UpdateConference(ctx, 999999, conference.ConferencePatch{Name: ptr("x")}); !errors.Is(err, conference.ErrNotFound) {
		t.Errorf("update of an unknown conference: err = %v, want ErrNotFound", err)
	}
	if err := b.store.DeleteConference(ctx, 999999); !errors.Is(err, conference.ErrNotFound) {
		t.Errorf("delete of an unknown conference: err = %v, want ErrNotFound", err)
	}
	if got := outbox(t, b.store, c.ID); len(got) != 1 {
		t.Errorf("outbox = %q, want only the create", got)
	}
}

// Conference updates and renames of their location, all at once: none deadlocks, and the
// newest event of every conference carries the location's final name, so a consumer that
// keeps the highest version is not left with a name older than the last rename.
func TestUpdatesDuringLocationRenamesPublishTheNewestName(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	other := pgtest.MustCreateLocation(t, b.store)
	var confs []conference.Conference
	for i := range 4 {
		confs = append(confs, pgtest.MustCreateConference(t, b.store, loc.ID, fmt.Sprintf("C%d", i)))
	}
	const rounds = 20
	var wg sync.WaitGroup
	errs := make(chan error, rounds*(len(confs)+1))
	for r := range rounds {
		wg.Go(func() {
			if _, err := b.store.UpdateLocation(ctx, loc.ID, conference.LocationPatch{Name: ptr(fmt.Sprintf("Hall %d", r))}); err != nil {
				errs <- fmt.Errorf("rename %d: %w", r, err)
			}
		})
		for i, c := range confs {
			wg.Go(func() {
				// Half of them move to the location (and back, from the other one).
				p := conference.ConferencePatch{MaxAttendees: ptr(1000 + r)}
				if i%2 == 1 {
					p.LocationID = ptr([]int64{loc.ID, other.ID}[r%2])
				}
				if _, err := b.store.UpdateConference(ctx, c.ID, p); err != nil {
					errs <- fmt.Errorf("update %d of conference %d: %w", r, c.ID, err)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, c := range confs {
		got, err := b.store.GetConference(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		samePayload(t, b, got)
	}
}

// The writes, like the hot reads, are prepared once per connection.
func TestConferenceWritesArePrepared(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	conn, err := b.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	store := postgres.NewStore(conn)
	loc := pgtest.MustCreateLocation(t, store)
	for i := range 3 {
		c := pgtest.MustCreateConference(t, store, loc.ID, fmt.Sprint("C", i))
		if _, err := store.UpdateConference(ctx, c.ID, conference.ConferencePatch{Name: ptr("Renamed")}); err != nil {
			t.Fatal(err)
		}
		if err := store.DeleteConference(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := conn.NewRaw(`SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'WITH %'`).Scan(ctx, &n); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("prepared write statements = %d, want the create, the update and the delete", n)
	}
}
