package postgres_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/api-attendee/internal/postgres/pgtest"
	"conferencego/syncer/changeevent"
)

// filled returns a payload of conference id with every field set to a value of its own, so
// that a field the SQL forgets comes back zero and differs. Fields are found by reflection:
// a field added to the contract later is filled too, without this test changing.
func filled(t *testing.T, id int64, salt int) changeevent.Conference {
	t.Helper()
	var c changeevent.Conference
	fill(t, reflect.ValueOf(&c).Elem(), salt)
	c.ID, c.Href = id, changeevent.Href(id)
	return c
}

func fill(t *testing.T, v reflect.Value, salt int) {
	t.Helper()
	when := time.Date(2027, 3, 1+salt, 9, 0, 0, 0, time.UTC)
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch {
		case f.Type() == reflect.TypeOf(time.Time{}):
			f.Set(reflect.ValueOf(when.Add(time.Duration(i) * 24 * time.Hour)))
		case f.Kind() == reflect.String:
			f.SetString(fmt.Sprintf("%s %d", name, salt))
		case f.Kind() == reflect.Int, f.Kind() == reflect.Int64, f.Kind() == reflect.Int32:
			f.SetInt(int64(10*salt + i))
		case f.Kind() == reflect.Bool:
			f.SetBool(salt%2 == 1)
		case f.Kind() == reflect.Struct:
			fill(t, f, salt)
		default:
			t.Fatalf("changeevent.Conference.%s: teach fill a %s", name, f.Type())
		}
	}
}

// sameFields compares each field ConferenceVO shares with the payload by name and type.
func sameFields(t *testing.T, path string, want changeevent.Conference, got attendee.ConferenceVO) {
	t.Helper()
	w, g := reflect.ValueOf(want), reflect.ValueOf(got)
	shared := 0
	for i := range g.NumField() {
		name := g.Type().Field(i).Name
		wf := w.FieldByName(name)
		if !wf.IsValid() || wf.Type() != g.Field(i).Type() {
			continue
		}
		shared++
		if !reflect.DeepEqual(wf.Interface(), g.Field(i).Interface()) {
			t.Errorf("%s: ConferenceVO.%s = %v, the change carried %v", path, name, g.Field(i).Interface(), wf.Interface())
		}
	}
	if shared < 4 {
		t.Fatalf("%s: only %d fields shared between the payload and ConferenceVO; the test compares nothing", path, shared)
	}
}

// TestEveryCarriedFieldIsStored ties together the hops of a field that no compiler checks on
// this side: the upsert (its column arrays and the CASE of each column that keeps a tombstone's
// data) and the repair statement list their columns by hand. A field that ConferenceVO and the
// contract both have, but that one statement forgets, fails here.
func TestEveryCarriedFieldIsStored(t *testing.T) {
	t.Parallel()
	store := setup(t)
	ctx := context.Background()
	applied := filled(t, 1, 1)
	mustApply(t, store, changes(changeevent.Event{
		ID: "evt-1-1", Type: changeevent.Created, ConferenceID: 1, Version: 1, OccurredAt: time.Now().UTC(), Data: &applied,
	}))
	got, err := store.GetConferenceVO(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	sameFields(t, "apply", applied, got)
	if got.ImportHref != applied.Href {
		t.Errorf("apply: ImportHref = %q, want %q", got.ImportHref, applied.Href)
	}
	// An update over the live row: the upsert's DO UPDATE SET must name every column too.
	updated := filled(t, 1, 3)
	mustApply(t, store, changes(changeevent.Event{
		ID: "evt-1-2", Type: changeevent.Updated, ConferenceID: 1, Version: 2, OccurredAt: time.Now().UTC(), Data: &updated,
	}))
	if got, err = store.GetConferenceVO(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got.Version != 2 {
		t.Fatalf("update: version %d, want 2", got.Version)
	}
	sameFields(t, "update", updated, got)
	// A delete carries no data, and its tombstone keeps every field the copy held.
	mustApply(t, store, changes(changeevent.Event{
		ID: "evt-1-3", Type: changeevent.Deleted, ConferenceID: 1, Version: 3, OccurredAt: time.Now().UTC(),
	}))
	if got, err = store.GetConferenceVO(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if !got.Deleted || got.Version != 3 {
		t.Fatalf("delete: version %d, deleted %v; want a tombstone of version 3", got.Version, got.Deleted)
	}
	sameFields(t, "tombstone", updated, got)
	if got.ImportHref != updated.Href {
		t.Errorf("tombstone: ImportHref = %q, want %q", got.ImportHref, updated.Href)
	}

	repaired := filled(t, 1, 2)
	ch := pgtest.Change(changeevent.Event{
		ID: "evt-1-5", Type: changeevent.Updated, ConferenceID: 1, Version: 5, OccurredAt: time.Now().UTC(), Data: &repaired,
	})
	if _, err := store.Repair(ctx, "s", []attendee.Repair{{ConferenceID: 1, Replaces: 3, Change: ch}}); err != nil {
		t.Fatal(err)
	}
	if got, err = store.GetConferenceVO(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got.Version != 5 {
		t.Fatalf("repair: version %d, want 5", got.Version)
	}
	sameFields(t, "repair", repaired, got)
}
