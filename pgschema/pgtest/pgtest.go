// Package pgtest gives each test its own freshly migrated schema, or its own database, on the
// real Postgres, so that tests of every service run in parallel on a shared server.
//
// The server is TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres). When
// it cannot be reached a test skips with the reason on a developer's machine, and fails when
// CI is set.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"

	"conferencego/pgschema"
)

// testDatabase holds the per-test schemas.
const testDatabase = "conferencego_test"

// AdminURL is the URL of the server's maintenance database.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// URLFor returns AdminURL pointed at database name.
func URLFor(tb testing.TB, name string) string {
	tb.Helper()
	u, err := url.Parse(AdminURL())
	if err != nil {
		tb.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func admin(tb testing.TB) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		msg := fmt.Sprintf("Postgres is not reachable at %s (set TEST_DATABASE_URL): %v", AdminURL(), err)
		if os.Getenv("CI") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return conn
}

// NewDatabase creates an empty database for tb and returns its URL. It is dropped when tb ends.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	conn := admin(tb)
	defer conn.Close(context.Background())
	name := "t_" + randomName()
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		conn := admin(tb)
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop database %s: %v", name, err)
		}
	})
	return URLFor(tb, name)
}

func ensureTestDatabase(tb testing.TB) {
	tb.Helper()
	conn := admin(tb)
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", testDatabase).Scan(&exists); err != nil {
		tb.Fatalf("look for database %s: %v", testDatabase, err)
	}
	if exists {
		return
	}
	_, err := conn.Exec(context.Background(), "CREATE DATABASE "+testDatabase)
	var pgErr *pgconn.PgError
	// Test binaries of several packages race to create it; losing the race is fine.
	if err != nil && !(errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505")) {
		tb.Fatalf("create database %s: %v", testDatabase, err)
	}
}

// Migrator migrates a service's schema (its postgres.Migrate).
type Migrator func(ctx context.Context, db *bun.DB, schema string) error

// NewSchema creates a fresh schema for tb, migrates it with migrate, and returns a database
// handle whose search_path is that schema, and the schema's name. The schema is dropped when
// tb ends.
func NewSchema(tb testing.TB, migrate Migrator) (*bun.DB, string) {
	tb.Helper()
	ensureTestDatabase(tb)
	schema := "t_" + randomName()
	ctx := context.Background()
	db, err := pgschema.Open(ctx, URLFor(tb, testDatabase), schema)
	if err != nil {
		tb.Fatalf("open test schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
		db.Close()
	})
	if err := migrate(ctx, db, schema); err != nil {
		tb.Fatalf("migrate test schema: %v", err)
	}
	return db, schema
}

func randomName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
