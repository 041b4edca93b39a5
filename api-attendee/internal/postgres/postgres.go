// Package postgres stores the attendee context in Postgres with bun: the Store, the one apply
// path of conference changes into conference_vos, registration, and the embedded migrations.
// Driver errors stop here; callers see the attendee package's errors.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/pgschema"
)

// Schema is the service's own schema in production.
const Schema = "attendee"

// Open connects to the database at dsn with search_path set to schema, so that every
// unqualified table name resolves there, and checks the connection.
func Open(ctx context.Context, dsn, schema string) (*bun.DB, error) {
	return pgschema.Open(ctx, dsn, schema)
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate creates schema if needed and applies this service's migrations not yet applied;
// several instances may start at once.
func Migrate(ctx context.Context, db *bun.DB, schema string) error {
	return pgschema.Migrate(ctx, db, schema, migrationFiles)
}

// translate turns driver errors into the domain's. Constraint and data errors are the
// client's fault when they reach here (validation should have caught them first), so they
// become ErrConflict or ErrInvalid rather than a 500.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return attendee.ErrNotFound
	}
	if pgschema.Unavailable(err) {
		return fmt.Errorf("%w: %w", attendee.ErrUnavailable, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23505" && pgErr.ConstraintName == "attendees_conference_email":
			return fmt.Errorf("%w: that e-mail address is already registered for this conference", attendee.ErrConflict)
		case pgErr.Code == "23505", pgErr.Code == "23503":
			return fmt.Errorf("%w: %s", attendee.ErrConflict, pgErr.Message)
		case pgErr.Code == "23514", pgErr.Code == "23502", pgErr.Code[:2] == "22":
			return fmt.Errorf("%w: %s", attendee.ErrInvalid, pgErr.Message)
		}
	}
	return err
}
