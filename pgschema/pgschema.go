// Package pgschema gives a service its own Postgres schema through bun: a connection whose
// search_path is that schema, migrations applied from embedded SQL under an advisory lock, and
// the test that tells a failure of the database from a failure of the request, the
// translation of driver errors into the domain's kinds (conferencego/service/domainerr), and
// a connect that waits for a database still starting. Each service keeps its migrations, its
// store and the messages of its own constraints.
package pgschema

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"net"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/migrate"
)

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

// Migrate creates schema if needed and applies every migration of migrations (files named
// like 0001_name.tx.up.sql, at any depth) not yet applied.
//
// Two instances starting at once must not both migrate, and a process killed mid-migration
// must not leave a lock behind that stops every later start. bun's lock table does the first
// but not the second, so the whole step runs under a session-level advisory lock instead,
// which Postgres releases when the connection dies.
func Migrate(ctx context.Context, db *bun.DB, schema string, migrations fs.FS) error {
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
	found := migrate.NewMigrations()
	if err := found.Discover(migrations); err != nil {
		return fmt.Errorf("migrate: discover: %w", err)
	}
	migrator := migrate.NewMigrator(db, found, migrate.WithMarkAppliedOnSuccess(true))
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

// Unavailable reports errors that say the database, not the request, failed: a connection
// terminated by the server (a restart, an administrator), a broken connection, a server that
// refuses connections for now, a transaction chosen as a deadlock victim. They answer 503, so
// that clients retry, rather than 500.
func Unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		class := pgErr.Code[:2]
		return class == "57" || class == "08" || class == "53" || class == "40"
	}
	var netErr net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.As(err, &netErr) || pgconn.SafeToRetry(err)
}
