// Package pgtest gives each test its own freshly migrated schema, or its own database, on the
// real Postgres, so that tests run in parallel on a shared server.
//
// The server is TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres). When
// it cannot be reached a test skips with the reason on a developer's machine, and fails when
// CI is set.
package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"conferencego/api-conference/internal/conference"
	"conferencego/api-conference/internal/postgres"
	sharedpgtest "conferencego/pgschema/pgtest"
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

// MustCreateLocation stores a valid location in state TX and returns it.
func MustCreateLocation(tb testing.TB, store *postgres.Store) conference.Location {
	tb.Helper()
	name, city, rooms, state := "Convention Center", "Austin", 12, "TX"
	l, err := store.CreateLocation(context.Background(), conference.LocationPatch{Name: &name, City: &city, RoomCount: &rooms, State: &state})
	if err != nil {
		tb.Fatalf("create location: %v", err)
	}
	return l
}

// MustCreateConference stores a valid conference named name at location locationID.
func MustCreateConference(tb testing.TB, store *postgres.Store, locationID int64, name string) conference.Conference {
	tb.Helper()
	starts := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	ends := starts.Add(48 * time.Hour)
	maxP, maxA := 2, 100
	c, err := store.CreateConference(context.Background(), conference.ConferencePatch{
		Name: &name, Starts: &starts, Ends: &ends, MaxPresentations: &maxP, MaxAttendees: &maxA, LocationID: &locationID,
	})
	if err != nil {
		tb.Fatalf("create conference: %v", err)
	}
	return c
}
