// Package postgres stores the attendee context in Postgres with bun: the Store, the one apply
// path of conference changes into conference_vos, registration, and the embedded migrations.
// Driver errors stop here; callers see the attendee package's errors.
package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/migrate"

	"conferencego/api-attendee/internal/attendee"
)

// Schema is the service's own schema in production.
const Schema = "attendee"

var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open connects to the database at dsn with search_path set to schema, so that every
// unqualified table name resolves there. It checks the connection before returning.
func Open(ctx context.Context, dsn, schema string) (*bun.DB, error) {
	if !schemaRE.MatchString(schema) {
		return nil, fmt.Errorf("schema %q is not a plain lower-case identifier", schema)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	cfg.RuntimeParams["search_path"] = schema
	// bun renders arguments into the SQL text itself, so the extended protocol's prepare step
	// would only add a round trip and fill pgx's statement cache with one-off statements.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	sqldb := stdlib.OpenDB(*cfg)
	sqldb.SetMaxOpenConns(20)
	sqldb.SetMaxIdleConns(20)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	db := bun.NewDB(sqldb, pgdialect.New())
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s@%s:%d/%s: %w", cfg.User, cfg.Host, cfg.Port, cfg.Database, err)
	}
	return db, nil
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate creates schema if needed and applies every migration not yet applied.
//
// Two instances starting at once must not both migrate, and a process killed mid-migration
// must not leave a lock behind that stops every later start. bun's lock table does the first
// but not the second, so the whole step runs under a session-level advisory lock instead,
// which Postgres releases when the connection dies.
func Migrate(ctx context.Context, db *bun.DB, schema string) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: get connection: %w", err)
	}
	defer conn.Close()
	key := advisoryKey("conferencego.migrate." + schema)
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", key); err != nil {
		return fmt.Errorf("migrate: take advisory lock: %w", err)
	}
	defer func() {
		// A fresh context: the lock must go even when ctx is already cancelled.
		unlockCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = conn.ExecContext(unlockCtx, "SELECT pg_advisory_unlock(?)", key)
	}()

	// Only create the schema when it is missing: Postgres checks the CREATE privilege on the
	// database even for CREATE SCHEMA IF NOT EXISTS of a schema that exists, and a deployment
	// that made the schema for this service's role need not grant that privilege.
	var exists bool
	if err := conn.NewRaw("SELECT to_regnamespace(?) IS NOT NULL", schema).Scan(ctx, &exists); err != nil {
		return fmt.Errorf("migrate: look for schema %s: %w", schema, err)
	}
	if !exists {
		if _, err := conn.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("migrate: create schema %s: %w", schema, err)
		}
	}
	migrations := migrate.NewMigrations()
	if err := migrations.Discover(migrationFiles); err != nil {
		return fmt.Errorf("migrate: discover: %w", err)
	}
	migrator := migrate.NewMigrator(db, migrations, migrate.WithMarkAppliedOnSuccess(true))
	if err := migrator.Init(ctx); err != nil {
		return fmt.Errorf("migrate: init: %w", err)
	}
	if _, err := migrator.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

func advisoryKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
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
	if unavailable(err) {
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

// unavailable reports errors that say the database, not the request, failed: a connection
// terminated by the server (a restart, an administrator), a broken connection, a server that
// refuses connections for now, a transaction chosen as a deadlock victim. They answer 503, so
// that clients retry, rather than 500.
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		class := pgErr.Code[:2]
		return class == "57" || class == "08" || class == "53" || class == "40"
	}
	var netErr net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.As(err, &netErr) || pgconn.SafeToRetry(err)
}
