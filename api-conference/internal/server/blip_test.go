package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"conferencego/api-conference/internal/postgres"
	"conferencego/api-conference/internal/postgres/pgtest"
	"conferencego/api-conference/internal/server"
	"conferencego/httpedge/edgetest"
	"conferencego/pgschema"
)

// TestDatabaseBlipIsNever500 terminates the service's own database backends while clients
// write. A write may fail then (503 with Retry-After, so they retry) or succeed, but never 500:
// a connection that dies between statements fails at BEGIN or COMMIT, outside the statements'
// own error translation.
func TestDatabaseBlipIsNever500(t *testing.T) {
	t.Parallel()
	base, schema := pgtest.NewSchema(t)
	var database string
	if err := base.NewRaw("SELECT current_database()").Scan(context.Background(), &database); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	appName := "blip_" + hex.EncodeToString(b)
	u, err := url.Parse(pgtest.URLFor(t, database))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", appName)
	u.RawQuery = q.Encode()
	db, err := pgschema.Open(context.Background(), u.String(), schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := postgres.NewStore(db)
	app := server.New(slog.New(slog.NewTextHandler(io.Discard, nil)), store, server.Options{})
	f := fixture{app: app, db: base, store: store, base: edgetest.Serve(t, app)}

	admin, err := pgx.Connect(context.Background(), pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })

	// After every write a worker asks for a termination; the killer does them one by one, so
	// terminations land between and inside the writes that follow.
	kick := make(chan struct{}, 64)
	killed := make(chan int)
	go func() {
		n := 0
		for range kick {
			tag, err := admin.Exec(context.Background(),
				"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()", appName)
			if err == nil {
				n += int(tag.RowsAffected())
			}
		}
		killed <- n
	}()

	loc := f.mustLocation(t)
	const workers, writes = 4, 30
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range writes {
				// Conference writes are transactions (row, outbox, change marker).
				r := f.do(t, "POST", "/api/conferences/", map[string]any{
					"name": fmt.Sprintf("Conf %d-%d", w, i), "starts": "2027-03-01", "ends": "2027-03-02",
					"max_presentations": 1, "max_attendees": 1, "location": loc.ID,
				})
				if r.status == 503 && r.header.Get("Retry-After") == "" {
					t.Errorf("503 without Retry-After: %s", r.body)
				}
				if r.status != 201 && r.status != 503 {
					t.Errorf("status %d during a database blip, want 201 or 503: %s", r.status, r.body)
				}
				mu.Lock()
				statuses[r.status]++
				mu.Unlock()
				select {
				case kick <- struct{}{}:
				default:
				}
			}
		})
	}
	wg.Wait()
	close(kick)
	t.Logf("statuses %v, %d backends terminated", statuses, <-killed)
	// Every 201 is a stored row. A 503 from a failed COMMIT may or may not have committed (the
	// answer was lost with the connection), so it may have left a row too, but nothing else did.
	var rows int
	if err := base.NewRaw("SELECT count(*) FROM conferences").Scan(context.Background(), &rows); err != nil {
		t.Fatal(err)
	}
	if rows < statuses[201] || rows > statuses[201]+statuses[503] {
		t.Errorf("%d rows stored for %d 201s and %d 503s", rows, statuses[201], statuses[503])
	}
}
