package pgschema

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"
)

// Cached is the first query argument that makes pgx's database/sql driver run a statement
// through the connection's prepared-statement cache, whatever the pool's default (Open sets
// the simple protocol, under which bun renders every argument into the text and Postgres
// parses and plans each statement anew). Only constant SQL texts with $n placeholders belong
// there: each distinct text takes a slot of every connection's cache.
var Cached any = pgx.QueryExecModeCacheStatement

// Querier is what database/sql's DB, Tx and Conn share.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// SQLOf returns the database/sql handle under db, so that a statement inside a transaction
// runs on the transaction's own connection.
func SQLOf(db bun.IDB) (Querier, error) {
	switch db := db.(type) {
	case *bun.DB:
		return db.DB, nil
	case bun.Tx:
		return db.Tx, nil
	case *bun.Tx:
		return db.Tx, nil
	case bun.Conn:
		return db.Conn, nil
	case *bun.Conn:
		return db.Conn, nil
	}
	return nil, fmt.Errorf("no database/sql handle under %T", db)
}
