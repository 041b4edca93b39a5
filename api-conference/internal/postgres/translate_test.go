package postgres

import (
	"database/sql"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"conferencego/api-conference/internal/conference"
)

// The one table from driver errors to the domain's, which the server maps to statuses.
func TestTranslate(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return fmt.Errorf("exec: %w", &pgconn.PgError{Code: code, Message: "m"}) }
	other := errors.New("something else")
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"no rows", sql.ErrNoRows, conference.ErrNotFound},
		{"unique violation", pg("23505"), conference.ErrConflict},
		{"foreign key violation", pg("23503"), conference.ErrConflict},
		{"check violation", pg("23514"), conference.ErrInvalid},
		{"string too long", pg("22001"), conference.ErrInvalid},
		{"deadlock victim", pg("40P01"), conference.ErrUnavailable},
		{"serialization failure", pg("40001"), conference.ErrUnavailable},
		{"terminated by administrator", pg("57P01"), conference.ErrUnavailable},
		{"connection failure", pg("08006"), conference.ErrUnavailable},
		{"too many connections", pg("53300"), conference.ErrUnavailable},
		{"connection cut", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), conference.ErrUnavailable},
		{"anything else", other, other},
	}
	for _, tt := range tests {
		if got := translate(tt.err); !errors.Is(got, tt.want) {
			t.Errorf("%s: translate(%v) = %v, want it to match %v", tt.name, tt.err, got, tt.want)
		}
	}
	for _, domain := range []error{conference.ErrNotFound, conference.ErrConflict, conference.ErrInvalid, conference.ErrUnavailable} {
		if errors.Is(translate(other), domain) {
			t.Errorf("an unknown error became %v", domain)
		}
	}
}
