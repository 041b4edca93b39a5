// Package postgres stores the conference context in Postgres with bun: the Store, the
// transactional outbox, the change marker behind the list's ETag, and the embedded migrations.
// Driver errors stop here; callers see the conference package's errors.
package postgres

import (
	"context"
	"embed"

	"github.com/uptrace/bun"

	"conferencego/pgschema"
)

// Schema is the service's own schema in production.
const Schema = "conference"

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

// translate is where driver errors stop: the kinds it returns are the conference package's,
// which re-exports them, and no constraint here needs a message of its own.
func translate(err error) error { return pgschema.Translate(err) }
