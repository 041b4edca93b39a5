package stack

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrUnreachable wraps the error of a Postgres server that could not be reached, so that a
// test can skip on a developer's machine without one.
var ErrUnreachable = errors.New("postgres is not reachable")

// Database is a scratch database of one run, on the server of its admin URL.
type Database struct {
	Name string
	URL  string // the admin URL with the database's name as its path

	adminURL string
}

// CreateDatabase creates an empty database named prefix and random digits, through adminURL
// (a URL allowed to create databases).
func CreateDatabase(ctx context.Context, adminURL, prefix string) (*Database, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return nil, fmt.Errorf("admin URL: %w", err)
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %w", ErrUnreachable, u.Redacted(), err)
	}
	defer conn.Close(ctx)
	d := &Database{Name: prefix + RandomHex(6), adminURL: adminURL}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+d.Name); err != nil {
		return nil, fmt.Errorf("create database %s: %w", d.Name, err)
	}
	u.Path = "/" + d.Name
	d.URL = u.String()
	return d, nil
}

// Drop drops the database, with any connection still open to it. It has a context of its own,
// since it runs when the run's has ended.
func (d *Database) Drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.adminURL)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", d.Name, err)
	}
	defer conn.Close(ctx)
	// A replication slot of the database keeps it from being dropped, even by FORCE: end
	// its reader, if one is still there, and drop it.
	for {
		_, err := conn.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, d.Name)
		if err == nil {
			_, err = conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, d.Name)
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("drop the replication slots of database %s: %w", d.Name, err)
		}
		time.Sleep(50 * time.Millisecond) // a terminated reader takes a moment to let go
	}
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+d.Name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", d.Name, err)
	}
	return nil
}
