package pgschema_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"conferencego/pgschema"
	"conferencego/pgschema/pgtest"
	"conferencego/service/domainerr"
)

// Connect opens and migrates; a database the server refuses fails at once, naming DATABASE_URL.
func TestConnect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := pgschema.Connect(ctx, pgtest.NewDatabase(t), "svc", 10*time.Second, migrate)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM things").Scan(&n); err != nil || n != 2 {
		t.Errorf("things: %d rows, %v; want the migrated 2", n, err)
	}

	start := time.Now()
	_, err = pgschema.Connect(ctx, pgtest.URLFor(t, "conferencego_no_such_database"), "svc", 10*time.Second, migrate)
	if err == nil || !strings.HasPrefix(err.Error(), "DATABASE_URL: ") || strings.Contains(err.Error(), "\n") {
		t.Errorf("Connect = %v; want one line naming DATABASE_URL", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Connect took %s to give up on a refusal; want no retrying", took)
	}
}

// Nothing listens on port 1: Connect retries until its timeout and says how long it tried.
func TestConnectGivesUp(t *testing.T) {
	t.Parallel()
	_, err := pgschema.Connect(context.Background(), "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=1",
		"svc", 500*time.Millisecond, migrate)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL: cannot reach the database within 500ms") {
		t.Errorf("Connect = %v; want it to give up naming DATABASE_URL", err)
	}
}

// InTx translates what the transaction fails with, and leaves a domain error as fn gave it.
func TestInTx(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewSchema(t, migrate)
	ctx := context.Background()
	if err := pgschema.Ping(ctx, db); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	err := pgschema.InTx(ctx, db, pgschema.Translate, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO things VALUES (1)")
		return err // untranslated: InTx must do it
	})
	if !errors.Is(err, domainerr.ErrConflict) {
		t.Errorf("InTx = %v; want the duplicate key as ErrConflict", err)
	}
	mine := domainerr.Invalid("name", "is required")
	called := false
	err = pgschema.InTx(ctx, db, func(err error) error { called = true; return err }, func(context.Context, bun.Tx) error { return mine })
	if !errors.Is(err, mine) || called {
		t.Errorf("InTx = %v (translate called: %v); want fn's own domain error untouched", err, called)
	}
}
