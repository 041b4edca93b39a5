package pgschema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"

	"conferencego/service/domainerr"
)

// Translate turns driver errors into the domain's kinds (domainerr, which both services'
// domains re-export), so that driver errors never reach the HTTP layer. Constraint and data
// errors are the client's fault when they reach here (validation should have caught them
// first), so they become ErrConflict or ErrInvalid rather than a 500; a failure of the
// database itself becomes ErrUnavailable. Any other error is returned as it is.
func Translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return domainerr.ErrNotFound
	}
	if Unavailable(err) {
		return fmt.Errorf("%w: %w", domainerr.ErrUnavailable, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505", pgErr.Code == "23503":
			return fmt.Errorf("%w: %s", domainerr.ErrConflict, pgErr.Message)
		case pgErr.Code == "23514", pgErr.Code == "23502", pgErr.Code[:2] == "22":
			return fmt.Errorf("%w: %s", domainerr.ErrInvalid, pgErr.Message)
		}
	}
	return err
}

// InTx runs fn in a transaction of db. RunInTx returns the errors of BEGIN and COMMIT as the
// driver gave them (a backend terminated between statements fails there, 57P01), so they are
// passed through translate like every other statement's, and answer 503 rather than 500; an
// error fn returned already translated stays as it is.
func InTx(ctx context.Context, db bun.IDB, translate func(error) error, fn func(ctx context.Context, tx bun.Tx) error) error {
	err := db.RunInTx(ctx, nil, fn)
	if err == nil || domainerr.Known(err) {
		return err
	}
	return translate(err)
}

// Ping checks that db answers a query.
func Ping(ctx context.Context, db bun.IDB) error {
	var one int
	if err := db.NewRaw("SELECT 1").Scan(ctx, &one); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}
