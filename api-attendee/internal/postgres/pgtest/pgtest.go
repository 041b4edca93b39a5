// Package pgtest gives each test its own freshly migrated schema, or its own database, on the
// real Postgres, so that tests run in parallel on a shared server.
//
// The server is TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres). When
// it cannot be reached a test skips with the reason on a developer's machine, and fails when
// CI is set.
package pgtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/api-attendee/internal/postgres"
	sharedpgtest "conferencego/pgschema/pgtest"
	"conferencego/syncer/changeevent"
)

// NewSchema creates a fresh schema for tb, migrated with this service's migrations, and
// returns a database handle whose search_path is that schema, and the schema's name.
func NewSchema(tb testing.TB) (*bun.DB, string) {
	tb.Helper()
	return sharedpgtest.NewSchema(tb, postgres.Migrate)
}

// NewDatabase, AdminURL and URLFor are the shared harness's (an empty database, the server's
// maintenance database, and a database's URL), named here so that a test imports one pgtest.
var NewDatabase, AdminURL, URLFor = sharedpgtest.NewDatabase, sharedpgtest.AdminURL, sharedpgtest.URLFor

// Created returns a valid created (version 1) or updated event of conference id.
func Created(id, version int64, name string, maxAttendees int) changeevent.Event {
	typ := changeevent.Updated
	if version == 1 {
		typ = changeevent.Created
	}
	starts := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	return changeevent.Event{
		ID: fmt.Sprintf("evt-%d-%d", id, version), Type: typ, ConferenceID: id, Version: version,
		OccurredAt: time.Now().UTC(),
		Data: &changeevent.Conference{
			ID: id, Href: changeevent.Href(id), Name: name, Starts: starts, Ends: starts.Add(48 * time.Hour),
			MaxAttendees: maxAttendees, Location: changeevent.Location{Name: "Convention Center", City: "Austin", State: "TX"},
		},
	}
}

// Deleted returns a delete event of conference id at version.
func Deleted(id, version int64) changeevent.Event {
	return changeevent.Event{
		ID: fmt.Sprintf("evt-%d-%d", id, version), Type: changeevent.Deleted, ConferenceID: id, Version: version,
		OccurredAt: time.Now().UTC(),
	}
}

// Batch returns events as a checked batch, for a test to apply. It panics on an invalid event:
// the fixtures of this package are valid by construction, so that is a bug in the test, and
// tables of batches have no testing.TB to fail.
func Batch(events ...changeevent.Event) attendee.Batch {
	b, err := attendee.NewBatch(events...)
	if err != nil {
		panic(fmt.Sprintf("pgtest.Batch: %v", err))
	}
	return b
}

// Change returns e checked, for a test's repair; it panics like Batch.
func Change(e changeevent.Event) *attendee.Change {
	return &Batch(e).Changes[0]
}

// MustConference applies a created event of conference id and returns the stored copy.
func MustConference(tb testing.TB, store *postgres.Store, id int64, maxAttendees int) attendee.ConferenceVO {
	tb.Helper()
	ctx := context.Background()
	if _, err := store.ApplyChanges(ctx, Batch(Created(id, 1, fmt.Sprintf("Conference %d", id), maxAttendees))); err != nil {
		tb.Fatalf("apply conference %d: %v", id, err)
	}
	c, err := store.GetConferenceVO(ctx, id)
	if err != nil {
		tb.Fatalf("read conference %d: %v", id, err)
	}
	return c
}
