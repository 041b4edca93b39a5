package pgschema_test

import (
	"context"
	"testing"

	"github.com/uptrace/bun"

	"conferencego/pgschema"
	"conferencego/pgschema/pgtest"
)

// A statement run with Cached through SQLOf is prepared on the connection of the handle it
// was given, a transaction's included, although the pool speaks the simple protocol; a
// handle SQLOf does not know is refused.
func TestSQLOfPreparesOnTheHandlesConnection(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.NewSchema(t, migrate)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	const query = "SELECT id FROM things WHERE id = $1"
	for _, h := range []bun.IDB{conn, tx} {
		q, err := pgschema.SQLOf(h)
		if err != nil {
			t.Fatal(err)
		}
		var id int
		if err := q.QueryRowContext(ctx, query, pgschema.Cached, 2).Scan(&id); err != nil || id != 2 {
			t.Fatalf("%T: id %d, %v; want 2", h, id, err)
		}
	}
	var prepared []string
	if err := tx.NewRaw("SELECT statement FROM pg_prepared_statements WHERE statement = ?", query).Scan(ctx, &prepared); err != nil {
		t.Fatal(err)
	}
	if len(prepared) != 1 {
		t.Errorf("prepared statements %q, want the query once", prepared)
	}
	if _, err := pgschema.SQLOf(nil); err == nil {
		t.Error("SQLOf(nil) gave a handle")
	}
}
