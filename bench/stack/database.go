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
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+d.Name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", d.Name, err)
	}
	return nil
}
