package pgschema_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"

	"conferencego/pgschema"
	"conferencego/pgschema/pgtest"
)

var migrations = fstest.MapFS{
	"migrations/0001_things.tx.up.sql":   {Data: []byte("CREATE TABLE things (id int PRIMARY KEY);")},
	"migrations/0001_things.tx.down.sql": {Data: []byte("DROP TABLE things;")},
	"migrations/0002_seed.tx.up.sql":     {Data: []byte("INSERT INTO things VALUES (1), (2);")},
	"migrations/0002_seed.tx.down.sql":   {Data: []byte("DELETE FROM things;")},
}

func migrate(ctx context.Context, db *bun.DB, schema string) error {
	return pgschema.Migrate(ctx, db, schema, migrations)
}

// Several instances starting at once migrate once, into their own schema.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			db, err := pgschema.Open(ctx, url, "svc")
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			errs[i] = migrate(ctx, db, "svc")
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: %v", i, err)
		}
	}
	db, err := pgschema.Open(ctx, url, "svc")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	// Unqualified: the search_path is the schema.
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM things").Scan(&n); err != nil || n != 2 {
		t.Errorf("things: %d rows, %v; want the 2 seeded once", n, err)
	}
}

func TestNewSchemaIsolatesTests(t *testing.T) {
	t.Parallel()
	a, schemaA := pgtest.NewSchema(t, migrate)
	b, schemaB := pgtest.NewSchema(t, migrate)
	if schemaA == schemaB {
		t.Fatal("two tests got one schema")
	}
	ctx := context.Background()
	if _, err := a.ExecContext(ctx, "INSERT INTO things VALUES (3)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRowContext(ctx, "SELECT count(*) FROM things").Scan(&n); err != nil || n != 2 {
		t.Errorf("the other schema sees %d rows (%v), want 2", n, err)
	}
}

func TestOpenRefusesOddSchemaNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "Svc", "a-b", "a;DROP TABLE x", "1abc"} {
		if _, err := pgschema.Open(context.Background(), "postgres://127.0.0.1:1/x", name); err == nil {
			t.Errorf("schema %q accepted", name)
		}
	}
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return fmt.Errorf("exec: %w", &pgconn.PgError{Code: code}) }
	for err, want := range map[error]bool{
		pg("40P01"): true, pg("40001"): true, pg("57P01"): true, pg("08006"): true, pg("53300"): true,
		pg("23505"): false, pg("22001"): false, sql.ErrNoRows: false,
		fmt.Errorf("read: %w", io.ErrUnexpectedEOF): true,
	} {
		if got := pgschema.Unavailable(err); got != want {
			t.Errorf("Unavailable(%v) = %v, want %v", err, got, want)
		}
	}
}
