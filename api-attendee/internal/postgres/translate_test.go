package postgres

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"conferencego/api-attendee/internal/attendee"
	sharedpgtest "conferencego/pgschema/pgtest"
)

// translate against what Postgres really answers, in this service's schema: each error is
// produced by a statement, not built by hand, so a change of constraint or driver shows here.
func TestTranslate(t *testing.T) {
	t.Parallel()
	db, _ := sharedpgtest.NewSchema(t, Migrate)
	ctx := context.Background()
	exec := func(query string, args ...any) error {
		_, err := db.ExecContext(ctx, query, args...)
		return err
	}
	const conferenceVO = `INSERT INTO conference_vos (conference_id, import_href, name, max_attendees, version, occurred_at)
		VALUES (?, '/api/conferences/1/', 'C', ?, 1, now())`
	const register = `INSERT INTO attendees (conference_id, email, name) VALUES (1, ?, ?)`
	if err := exec(conferenceVO, 1, 10); err != nil {
		t.Fatal(err)
	}
	if err := exec(register, "ada@example.com", "Ada"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		err  error
		want error
		says string // in the message, when the client is told why
	}{
		{"the e-mail registered twice", exec(register, "ADA@example.com", "Ada"), attendee.ErrConflict, "already registered"},
		{"another unique violation", exec(conferenceVO, 1, 10), attendee.ErrConflict, "duplicate key"},
		{"a foreign key violation", exec(`INSERT INTO attendees (conference_id, email, name) VALUES (2, 'b@example.com', 'B')`), attendee.ErrConflict, ""},
		{"a check violation", exec(conferenceVO, 3, -1), attendee.ErrInvalid, "check constraint"},
		{"a not-null violation", exec(`INSERT INTO attendees (conference_id, email, name) VALUES (1, 'c@example.com', NULL)`), attendee.ErrInvalid, ""},
		// Postgres text cannot hold NUL (the domain refuses it first; this is the net below).
		{"a NUL in text (22021)", exec(`SELECT convert_from('\x00'::bytea, 'UTF8')`), attendee.ErrInvalid, "0x00"},
		{"a value out of range (22003)", exec(`SELECT 2147483647::integer + 1`), attendee.ErrInvalid, "out of range"},
		{"no rows", db.NewSelect().Table("attendees").Column("id").Where("email = 'nobody'").Scan(ctx, new(int64)), attendee.ErrNotFound, ""},
		{"the backend terminated (57P01)", terminated(t, db), attendee.ErrUnavailable, ""},
	}
	for _, tt := range tests {
		if tt.err == nil {
			t.Errorf("%s: the statement succeeded; want an error to translate", tt.name)
			continue
		}
		got := translate(tt.err)
		if !errors.Is(got, tt.want) || !strings.Contains(got.Error(), tt.says) {
			t.Errorf("%s: translate(%v) = %v; want it to match %v and say %q", tt.name, tt.err, got, tt.want, tt.says)
		}
		for _, other := range []error{attendee.ErrNotFound, attendee.ErrConflict, attendee.ErrInvalid, attendee.ErrUnavailable} {
			if other != tt.want && errors.Is(got, other) {
				t.Errorf("%s: translate(%v) = %v also matches %v", tt.name, tt.err, got, other)
			}
		}
	}
	if other := errors.New("something else"); translate(other) != other || translate(nil) != nil {
		t.Error("translate changed an error that is not the driver's, or nil")
	}
	if !errors.Is(translate(sql.ErrNoRows), attendee.ErrNotFound) {
		t.Error("sql.ErrNoRows is not ErrNotFound")
	}
}

// terminated returns the error of a statement on a connection whose backend an administrator
// terminated: what a restart of Postgres looks like to a request in flight.
func terminated(t *testing.T, db *bun.DB) error {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var pid int
	if err := conn.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	// With a timeout, pg_terminate_backend waits until the backend is gone.
	if _, err := db.ExecContext(ctx, "SELECT pg_terminate_backend(?, 5000)", pid); err != nil {
		t.Fatal(err)
	}
	_, err = conn.ExecContext(ctx, "SELECT 1")
	return err
}
