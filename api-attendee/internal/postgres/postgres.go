// Package postgres stores the attendee context in Postgres with bun: the Store, the one apply
// path of conference changes into conference_vos, registration, and the embedded migrations.
// Driver errors stop here; callers see the attendee package's errors.
package postgres

import (
	"context"
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

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate creates schema if needed and applies this service's migrations not yet applied;
// several instances may start at once.
func Migrate(ctx context.Context, db *bun.DB, schema string) error {
	return pgschema.Migrate(ctx, db, schema, migrationFiles)
}

// translate is where driver errors stop (pgschema.Translate), with one constraint of this
// schema told apart: the second registration of an e-mail address for one conference, which a
// client can act on when it reads why.
func translate(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "attendees_conference_email" {
		return fmt.Errorf("%w: that e-mail address is already registered for this conference", attendee.ErrConflict)
	}
	return pgschema.Translate(err)
}
