package pgcluster

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestClusterRestarts: a cluster of its own answers, is stopped cleanly and as a crash, and
// answers again after each start with what was committed before, with its own settings.
func TestClusterRestarts(t *testing.T) {
	ctx := context.Background()
	c, err := New(ctx, "wal_level=logical")
	if errors.Is(err, ErrNoPostgres) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Remove()
	exec := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, c.AdminURL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	exec("CREATE TABLE kept (n int); INSERT INTO kept VALUES (1)")
	exec("DO $$ BEGIN IF current_setting('wal_level') <> 'logical' THEN RAISE 'wal_level is %', current_setting('wal_level'); END IF; END $$")
	for _, mode := range []string{"fast", "immediate"} {
		if err := c.Stop(ctx, mode); err != nil {
			t.Fatal(err)
		}
		if conn, err := pgx.Connect(ctx, c.AdminURL()); err == nil {
			conn.Close(ctx)
			t.Fatalf("the server answers after pg_ctl stop -m %s", mode)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		exec("SELECT 1/count(*) FROM kept") // divides by zero if the row is gone
	}
}

// Shared makes one cluster per set of settings and hands the same one out again.
func TestShared(t *testing.T) {
	a, err := Shared("wal_level=logical")
	if errors.Is(err, ErrNoPostgres) && os.Getenv("CI") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer RemoveShared()
	b, err := Shared("wal_level=logical")
	if err != nil || b != a {
		t.Fatalf("a second Shared with the same settings: %p, %v; want the first, %p", b, err, a)
	}
	conn, err := pgx.Connect(context.Background(), a.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var level string
	if err := conn.QueryRow(context.Background(), "SHOW wal_level").Scan(&level); err != nil || level != "logical" {
		t.Errorf("wal_level %q, %v", level, err)
	}
}
