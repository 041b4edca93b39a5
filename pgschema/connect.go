package pgschema

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"
)

// Connect opens the database at dsn with search_path set to schema (Open), retrying for up to
// timeout so that a database that is still starting does not fail the service, and then
// migrates schema with migrate (a service's Migrate). Its errors name DATABASE_URL, the
// variable every service reads dsn from, so that a process that gives up says on one line
// what to fix.
func Connect(ctx context.Context, dsn, schema string, timeout time.Duration, migrate func(context.Context, *bun.DB, string) error) (*bun.DB, error) {
	db, err := connect(ctx, dsn, schema, timeout)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, db, schema); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func connect(ctx context.Context, dsn, schema string, timeout time.Duration) (*bun.DB, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wait := 100 * time.Millisecond
	for {
		db, err := Open(ctx, dsn, schema)
		if err == nil {
			return db, nil
		}
		// The server answered and said no (no such database, bad password): waiting won't help.
		// 57P03 is "the database system is starting up", which will.
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code != "57P03" {
			return nil, fmt.Errorf("DATABASE_URL: %w", err)
		}
		select {
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), context.Canceled) {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("DATABASE_URL: cannot reach the database within %s: %w", timeout, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}
