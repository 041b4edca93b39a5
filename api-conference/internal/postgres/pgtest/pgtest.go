// Package pgtest gives each test its own freshly migrated schema, or its own database, on the
// real Postgres, so that tests run in parallel on a shared server.
//
// The server is TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres). When
// it cannot be reached a test skips with the reason on a developer's machine, and fails when
// CI is set.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"

	"conferencego/api-conference/internal/conference"
	"conferencego/api-conference/internal/postgres"
	"conferencego/pgschema"
	sharedpgtest "conferencego/pgschema/pgtest"
	"conferencego/syncer/pgcluster"
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

var serial atomic.Int64

// LogicalSchema is NewSchema in a database of tb's own on a cluster with wal_level=logical, one
// per test binary (the shared server runs with replica), and returns the database's name too.
// The binary's TestMain calls RemoveCluster.
func LogicalSchema(tb testing.TB) (*bun.DB, string) {
	tb.Helper()
	cluster, err := pgcluster.Shared("wal_level=logical", "max_wal_senders=20", "max_replication_slots=20")
	if errors.Is(err, pgcluster.ErrNoPostgres) && os.Getenv("CI") == "" {
		tb.Skip(err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, cluster.AdminURL())
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close(ctx)
	name := fmt.Sprintf("logical_%d", serial.Add(1))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatal(err)
	}
	u, err := url.Parse(cluster.AdminURL())
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + name
	db, err := pgschema.Open(ctx, u.String(), postgres.Schema)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := postgres.Migrate(ctx, db, postgres.Schema); err != nil {
		tb.Fatal(err)
	}
	return db, name
}

// RemoveCluster stops and removes LogicalSchema's cluster, if one was made.
func RemoveCluster() { pgcluster.RemoveShared() }
