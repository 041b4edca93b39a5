package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"conferencego/api-conference/internal/conference"
	"conferencego/api-conference/internal/postgres"
	"conferencego/api-conference/internal/postgres/pgtest"
	"conferencego/syncer/changeevent"
)

// drain reads the feed from cursor until it has nothing more ready, and returns what it served
// as "id vN type" and the cursor to go on from.
func drain(t *testing.T, store *postgres.Store, cursor string, limit int) ([]changeevent.Change, string) {
	t.Helper()
	var out []changeevent.Change
	for {
		page, err := store.Feed(context.Background(), cursor, limit)
		if err != nil {
			t.Fatalf("feed after %q: %v", cursor, err)
		}
		out = append(out, page.Changes...)
		cursor = page.Next
		if !page.More {
			return out, cursor
		}
	}
}

// await reads the feed from cursor until it has served ok, against a deadline: the feed holds
// changes back while older transactions anywhere on the server are still running.
func await(t *testing.T, store *postgres.Store, cursor string, ok func([]changeevent.Change) bool) ([]changeevent.Change, string) {
	t.Helper()
	var all []changeevent.Change
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, next := drain(t, store, cursor, changeevent.MaxPage)
		all, cursor = append(all, got...), next
		if ok(all) {
			return all, cursor
		}
		if time.Now().After(deadline) {
			t.Fatalf("feed never served what was awaited; got %s", summary(all))
		}
		time.Sleep(10 * time.Millisecond) // polling against a deadline
	}
}

func summary(chs []changeevent.Change) []string {
	out := make([]string, len(chs))
	for i, c := range chs {
		out[i] = fmt.Sprintf("%d v%d %s", c.ConferenceID, c.Version, c.Type)
	}
	return out
}

// has reports whether chs serves conference id at version v.
func has(id, v int64) func([]changeevent.Change) bool {
	return func(chs []changeevent.Change) bool {
		for _, c := range chs {
			if c.ConferenceID == id && c.Version == v {
				return true
			}
		}
		return false
	}
}

func TestFeedServesCreateUpdateDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	c := pgtest.MustCreateConference(t, b.store, loc.ID, "GopherCon")
	got, cur := await(t, b.store, "", has(c.ID, 1))
	if diff := cmp.Diff([]string{fmt.Sprintf("%d v1 conference.created", c.ID)}, summary(got)); diff != "" {
		t.Errorf("after create (-want +got):\n%s", diff)
	}
	ev, err := got[0].Event()
	if err != nil {
		t.Fatalf("the feed served an invalid change: %v", err)
	}
	if ev.ID != changeevent.SourceEventID(c.ID, 1) || ev.Data.Name != "GopherCon" || ev.Data.Location.City != "Austin" {
		t.Errorf("created change: %+v", ev)
	}
	if _, err := b.store.UpdateConference(ctx, c.ID, conference.ConferencePatch{Name: ptr("GopherCon EU")}); err != nil {
		t.Fatal(err)
	}
	got, cur = await(t, b.store, cur, has(c.ID, 2))
	if diff := cmp.Diff([]string{fmt.Sprintf("%d v2 conference.updated", c.ID)}, summary(got)); diff != "" {
		t.Errorf("after update (-want +got):\n%s", diff)
	}
	if err := b.store.DeleteConference(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	got, cur = await(t, b.store, cur, has(c.ID, 3))
	if diff := cmp.Diff([]string{fmt.Sprintf("%d v3 conference.deleted", c.ID)}, summary(got)); diff != "" {
		t.Errorf("after delete (-want +got):\n%s", diff)
	}
	if string(got[0].Data) != "null" {
		t.Errorf("a tombstone carries data %s", got[0].Data)
	}
	if _, err := got[0].Event(); err != nil {
		t.Errorf("tombstone: %v", err)
	}
	// An idle poll serves nothing and keeps a usable cursor.
	page, err := b.store.Feed(ctx, cur, 10)
	if err != nil || len(page.Changes) != 0 || page.More || page.Next == "" {
		t.Errorf("idle poll: %+v, %v", page, err)
	}
}

// A transaction that took its xid first but commits last must not be skipped.
func TestFeedHoldsBackWhatCommitsOutOfOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	a := pgtest.MustCreateConference(t, b.store, loc.ID, "A")
	bb := pgtest.MustCreateConference(t, b.store, loc.ID, "B")
	_, cur := await(t, b.store, "", has(bb.ID, 1))

	conn, err := b.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx1, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback()
	if _, err := tx1.ExecContext(ctx, "UPDATE conferences SET name = 'A2' WHERE id = ?", a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.UpdateConference(ctx, bb.ID, conference.ConferencePatch{Name: ptr("B2")}); err != nil {
		t.Fatal(err)
	}
	// B committed, but A's transaction is older and open: B is held back.
	got, held := drain(t, b.store, cur, 100)
	if len(got) != 0 {
		t.Fatalf("served %v while an older transaction is open", summary(got))
	}
	if err := tx1.Commit(); err != nil {
		t.Fatal(err)
	}
	got, _ = await(t, b.store, held, func(chs []changeevent.Change) bool { return has(a.ID, 2)(chs) && has(bb.ID, 2)(chs) })
	if len(got) != 2 {
		t.Errorf("served %v, want A v2 and B v2 once each", summary(got))
	}
}

func TestFeedNeverServesARolledBackChange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	c := pgtest.MustCreateConference(t, b.store, loc.ID, "A")
	_, cur := await(t, b.store, "", has(c.ID, 1))
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE conferences SET name = 'never' WHERE id = ?", c.ID); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	marker := pgtest.MustCreateConference(t, b.store, loc.ID, "after")
	got, _ := await(t, b.store, cur, has(marker.ID, 1))
	if diff := cmp.Diff([]string{fmt.Sprintf("%d v1 conference.created", marker.ID)}, summary(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestFeedServesTenThousandChangesOfOneTransactionOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	const n = 10_000
	if _, err := b.db.ExecContext(ctx, `INSERT INTO conferences (name, starts, ends, max_presentations, max_attendees, location_id)
		SELECT 'C' || i, '2027-03-01', '2027-03-02', 1, 100, ? FROM generate_series(1, ?) AS i`, loc.ID, n); err != nil {
		t.Fatal(err)
	}
	first, cur := await(t, b.store, "", func(chs []changeevent.Change) bool { return len(chs) >= n })
	if len(first) != n {
		t.Fatalf("SQL insert: %d changes, want %d", len(first), n)
	}
	if _, err := b.store.UpdateLocation(ctx, loc.ID, conference.LocationPatch{Name: ptr("Hall B")}); err != nil {
		t.Fatal(err)
	}
	var pages int
	seen := map[int64]int{}
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < n {
		page, err := b.store.Feed(ctx, cur, changeevent.MaxPage)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Changes) > 0 {
			pages++
		}
		for _, c := range page.Changes {
			seen[c.ConferenceID]++
			if c.Version != 2 {
				t.Fatalf("conference %d at v%d, want v2", c.ConferenceID, c.Version)
			}
		}
		cur = page.Next
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d served", len(seen), n)
		}
		if !page.More && len(seen) < n {
			time.Sleep(10 * time.Millisecond) // polling against a deadline
		}
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("conference %d served %d times", id, k)
		}
	}
	if pages != n/changeevent.MaxPage {
		t.Errorf("%d pages, want %d", pages, n/changeevent.MaxPage)
	}
}

func TestSQLWritesGetVersionsAndReachTheFeed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	var id int64
	if err := b.db.NewRaw(`INSERT INTO conferences (name, starts, ends, max_presentations, max_attendees, location_id)
		VALUES ('Imported', '2027-03-01', '2027-03-02', 1, 100, ?) RETURNING id`, loc.ID).Scan(ctx, &id); err != nil {
		t.Fatal(err)
	}
	_, cur := await(t, b.store, "", has(id, 1))
	// An UPDATE that forgets the version still makes one.
	if _, err := b.db.ExecContext(ctx, "UPDATE conferences SET max_attendees = 5 WHERE id = ?", id); err != nil {
		t.Fatal(err)
	}
	_, cur = await(t, b.store, cur, has(id, 2))
	// An UPDATE that changes nothing is not a change; the app's own bump is not doubled.
	if _, err := b.db.ExecContext(ctx, "UPDATE conferences SET max_attendees = 5 WHERE id = ?", id); err != nil {
		t.Fatal(err)
	}
	c, err := b.store.UpdateConference(ctx, id, conference.ConferencePatch{Name: ptr("Renamed")})
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != 3 {
		t.Errorf("after the app's update: v%d, want v3", c.Version)
	}
	got, cur := await(t, b.store, cur, has(id, 3))
	if len(got) != 1 {
		t.Errorf("served %v, want only v3", summary(got))
	}
	// Delete, then create again under the same id: the new life outranks the tombstone.
	if _, err := b.db.ExecContext(ctx, "DELETE FROM conferences WHERE id = ?", id); err != nil {
		t.Fatal(err)
	}
	_, cur = await(t, b.store, cur, has(id, 4))
	if _, err := b.db.ExecContext(ctx, `INSERT INTO conferences (id, name, starts, ends, max_presentations, max_attendees, location_id)
		OVERRIDING SYSTEM VALUE VALUES (?, 'Again', '2027-03-01', '2027-03-02', 1, 100, ?)`, id, loc.ID); err != nil {
		t.Fatal(err)
	}
	got, _ = await(t, b.store, cur, has(id, 5))
	if got[len(got)-1].Type != changeevent.Updated || string(got[len(got)-1].Data) == "null" {
		t.Errorf("re-created: %v", summary(got))
	}
}

func TestPrunedTombstonesMakeOldCursorsGone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	c := pgtest.MustCreateConference(t, b.store, loc.ID, "A")
	_, old := await(t, b.store, "", has(c.ID, 1))
	if err := b.store.DeleteConference(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	_, fresh := await(t, b.store, old, has(c.ID, 2))
	if _, err := b.db.ExecContext(ctx, "UPDATE conference_log SET changed_at = now() - interval '2 hours'"); err != nil {
		t.Fatal(err)
	}
	n, err := b.store.PruneTombstones(ctx, time.Hour, 100)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1", n, err)
	}
	for _, cur := range []string{"", old} {
		if _, err := b.store.Feed(ctx, cur, 10); !errors.Is(err, conference.ErrGone) {
			t.Errorf("cursor %q behind the horizon: err = %v, want ErrGone", cur, err)
		}
	}
	if _, err := b.store.Feed(ctx, fresh, 10); err != nil {
		t.Errorf("fresh cursor: %v", err)
	}
	// A cursor this database cannot have given (it is ahead of every transaction).
	if _, err := b.store.Feed(ctx, "18446744073709551615.1", 10); !errors.Is(err, conference.ErrGone) {
		t.Errorf("cursor from the future: err = %v, want ErrGone", err)
	}
	for _, bad := range []string{"abc", "1.2.3", "-1.1", "1", "1.", ".1", "+1.1", "1.-1", "99999999999999999999999.1", "1.99999999999999999999"} {
		if _, err := b.store.Feed(ctx, bad, 10); !errors.Is(err, conference.ErrInvalid) {
			t.Errorf("cursor %q: err = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestStateListsLiveAndTombstonesWithoutGaps(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	want := map[int64]changeevent.Type{}
	for i := range 25 {
		c := pgtest.MustCreateConference(t, b.store, loc.ID, fmt.Sprint("C", i))
		want[c.ID] = changeevent.Created
		if i%3 == 0 {
			if err := b.store.DeleteConference(ctx, c.ID); err != nil {
				t.Fatal(err)
			}
			want[c.ID] = changeevent.Deleted
		}
	}
	got := map[int64]changeevent.Type{}
	var after int64
	var cursor string
	for {
		page, err := b.store.State(ctx, after, 4)
		if err != nil {
			t.Fatal(err)
		}
		if cursor == "" {
			cursor = page.Cursor
		}
		for _, c := range page.Changes {
			if _, dup := got[c.ConferenceID]; dup || c.ConferenceID <= after {
				t.Fatalf("conference %d repeated or out of order", c.ConferenceID)
			}
			got[c.ConferenceID], after = c.Type, c.ConferenceID
		}
		if !page.More {
			break
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}
	if _, err := b.store.Feed(ctx, cursor, 10); err != nil {
		t.Errorf("the listing's cursor: %v", err)
	}

	var live, dead int64
	for id, typ := range want {
		if typ == changeevent.Deleted {
			dead = id
		} else {
			live = id
		}
	}
	page, err := b.store.Lookup(ctx, []int64{dead, 999999, live})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Changes) != 2 || page.Changes[0].ConferenceID != min(live, dead) || page.Cursor == "" {
		t.Errorf("lookup: %v", summary(page.Changes))
	}
	if page, err := b.store.Lookup(ctx, nil); err != nil || len(page.Changes) != 0 {
		t.Errorf("empty lookup: %v, %v", page, err)
	}
}

func TestSourceIDDiffersBetweenDatabases(t *testing.T) {
	t.Parallel()
	a, b := setup(t), setup(t)
	ctx := context.Background()
	ida, err := a.store.SourceID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	idb, err := b.store.SourceID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ida == idb || changeevent.CheckSource(ida) != nil {
		t.Errorf("source ids %q and %q", ida, idb)
	}
	if again, _ := a.store.SourceID(ctx); again != ida {
		t.Errorf("source id changed from %q to %q", ida, again)
	}
}

func TestTruncateTombstonesEveryConferenceAndIDsCannotChange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	c := pgtest.MustCreateConference(t, b.store, loc.ID, "A")
	if _, err := b.db.ExecContext(ctx, "UPDATE conferences SET id = DEFAULT WHERE id = ?", c.ID); err == nil {
		t.Error("an UPDATE changed a conference's id")
	}
	_, cur := await(t, b.store, "", has(c.ID, 1))
	if _, err := b.db.ExecContext(ctx, "TRUNCATE conferences CASCADE"); err != nil {
		t.Fatal(err)
	}
	got, _ := await(t, b.store, cur, has(c.ID, 2))
	if got[0].Type != changeevent.Deleted {
		t.Errorf("after TRUNCATE: %v", summary(got))
	}
}

// TestEveryPathPublishesTheSamePayload ties together the hops of a conference field that no
// compiler checks: the outbox row, the change feed and the state listing each build the
// payload their own way (the feed and the listing from their own SQL), and all of them must
// carry what Conference.Payload says. A field added to Payload but forgotten in one query
// fails here, naming the path.
func TestEveryPathPublishesTheSamePayload(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	loc := pgtest.MustCreateLocation(t, b.store)
	created := pgtest.MustCreateConference(t, b.store, loc.ID, "Payload")
	// Every field a client may set, set to a value of its own through the write path: a hop
	// that drops a field's value (not only its column) then differs from Payload below.
	c, err := b.store.UpdateConference(ctx, created.ID, everyField(t, loc.ID))
	if err != nil {
		t.Fatal(err)
	}
	want := c.Payload()

	paths := map[string]*changeevent.Conference{}
	events, err := b.store.ReadOutbox(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Event.ConferenceID == c.ID {
			paths["outbox"] = e.Event.Data
		}
	}
	feed, _ := await(t, b.store, "", has(c.ID, c.Version))
	state, err := b.store.State(ctx, 0, changeevent.MaxPage)
	if err != nil {
		t.Fatal(err)
	}
	lookup, err := b.store.Lookup(ctx, []int64{c.ID})
	if err != nil {
		t.Fatal(err)
	}
	for name, chs := range map[string][]changeevent.Change{"feed": feed, "state": state.Changes, "lookup": lookup.Changes} {
		for _, ch := range chs {
			if ch.ConferenceID != c.ID {
				continue
			}
			data, err := changeevent.ParseData(ch.Data)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			paths[name] = data
		}
	}
	for _, name := range []string{"outbox", "feed", "state", "lookup"} {
		got, ok := paths[name]
		if !ok || got == nil {
			t.Errorf("%s: no payload of conference %d", name, c.ID)
			continue
		}
		if diff := cmp.Diff(want, *got); diff != "" {
			t.Errorf("%s's payload differs from Conference.Payload (-want +got):\n%s", name, diff)
		}
	}
}

// everyField is a ConferencePatch with every field given, each a value no other field has;
// a new field of a kind it does not know fails the test until it is taught.
func everyField(t *testing.T, location int64) conference.ConferencePatch {
	t.Helper()
	var p conference.ConferencePatch
	v := reflect.ValueOf(&p).Elem()
	day := time.Date(2027, 5, 1, 9, 0, 0, 0, time.UTC)
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		e := reflect.New(f.Type().Elem())
		switch {
		case name == "LocationID":
			e.Elem().SetInt(location)
		case f.Type().Elem() == reflect.TypeOf(time.Time{}):
			e.Elem().Set(reflect.ValueOf(day.AddDate(0, 0, i))) // fields in order: starts before ends
		case f.Type().Elem().Kind() == reflect.String:
			e.Elem().SetString(name + " of every field")
		case f.Type().Elem().Kind() == reflect.Int:
			e.Elem().SetInt(int64(10 + i))
		default:
			t.Fatalf("ConferencePatch.%s: teach everyField a %s", name, f.Type())
		}
		f.Set(e)
	}
	return p
}
