package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"conferencego/bench/stack"
)

// adminURL is the Postgres server where tests create their databases.
func adminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// newDatabase creates an empty database for t and returns its URL; it is dropped, with any
// connection still open to it, when t ends.
func newDatabase(t *testing.T) string {
	t.Helper()
	return newDatabaseAt(t, adminURL())
}

// newDatabaseAt is newDatabase on the server of admin.
func newDatabaseAt(t *testing.T, admin string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := stack.CreateDatabase(ctx, admin, "t_")
	if errors.Is(err, stack.ErrUnreachable) {
		unavailable(t, fmt.Sprintf("%v (set TEST_DATABASE_URL)", err))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Drop(); err != nil {
			t.Error(err)
		}
	})
	return db.URL
}

// connect opens a connection to the database at dsn, closed when t ends.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to the test database: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// conf is what the VO table must know of a conference.
type conf struct {
	ID           int64
	Name         string
	Starts, Ends time.Time
	MaxAttendees int64
	Version      int64
}

func (c conf) String() string {
	return fmt.Sprintf("{v%d %q %s..%s max %d}", c.Version, c.Name,
		c.Starts.UTC().Format(time.RFC3339Nano), c.Ends.UTC().Format(time.RFC3339Nano), c.MaxAttendees)
}

// vo is a row of attendee.conference_vos.
type vo struct {
	conf
	Deleted bool
}

func (v vo) String() string {
	if v.Deleted {
		return "tombstone " + v.conf.String()
	}
	return v.conf.String()
}

// strictness says what the check accepts for a conference that was created and deleted.
type strictness int

const (
	// tombstoneRequired: every deleted conference has a tombstone (push without data loss).
	tombstoneRequired strictness = iota
	// absenceAllowed: a deleted conference may be missing altogether, if the mode never showed
	// it to api-attendee (pull, or push after Redis lost its data); if it has a row, the row
	// is a tombstone.
	absenceAllowed
)

// snapshot reads both tables.
func snapshot(ctx context.Context, db *pgx.Conn) (live map[int64]conf, vos map[int64]vo, err error) {
	rows, err := db.Query(ctx, "SELECT id, name, starts, ends, max_attendees, version FROM conference.conferences")
	if err != nil {
		return nil, nil, fmt.Errorf("read conference.conferences: %w", err)
	}
	live = map[int64]conf{}
	for rows.Next() {
		var c conf
		if err := rows.Scan(&c.ID, &c.Name, &c.Starts, &c.Ends, &c.MaxAttendees, &c.Version); err != nil {
			return nil, nil, err
		}
		live[c.ID] = c
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read conference.conferences: %w", err)
	}
	rows, err = db.Query(ctx, `SELECT conference_id, name, coalesce(starts, 'epoch'), coalesce(ends, 'epoch'),
		max_attendees, version, deleted FROM attendee.conference_vos`)
	if err != nil {
		return nil, nil, fmt.Errorf("read attendee.conference_vos: %w", err)
	}
	vos = map[int64]vo{}
	for rows.Next() {
		var v vo
		if err := rows.Scan(&v.ID, &v.Name, &v.Starts, &v.Ends, &v.MaxAttendees, &v.Version, &v.Deleted); err != nil {
			return nil, nil, err
		}
		vos[v.ID] = v
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read attendee.conference_vos: %w", err)
	}
	return live, vos, nil
}

// projectionDiff lists every way vos differs from the projection of live; created holds every
// conference id the test ever created. Empty means equal.
func projectionDiff(live map[int64]conf, vos map[int64]vo, created map[int64]bool, mode strictness) []string {
	var diffs []string
	for id, c := range live {
		v, ok := vos[id]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("conference %d: live %s, but no VO", id, c))
		case v.Deleted:
			diffs = append(diffs, fmt.Sprintf("conference %d: live %s, but VO is a %s", id, c, v))
		case v.Version != c.Version || v.Name != c.Name || !v.Starts.Equal(c.Starts) || !v.Ends.Equal(c.Ends) || v.MaxAttendees != c.MaxAttendees:
			diffs = append(diffs, fmt.Sprintf("conference %d: live %s, VO %s", id, c, v))
		}
	}
	for id, v := range vos {
		if _, ok := live[id]; ok {
			continue
		}
		switch {
		case !created[id]:
			diffs = append(diffs, fmt.Sprintf("conference %d: never created by the test, but VO %s", id, v))
		case !v.Deleted:
			diffs = append(diffs, fmt.Sprintf("conference %d: deleted, but VO is live %s", id, v))
		}
	}
	if mode == tombstoneRequired {
		for id := range created {
			if _, ok := live[id]; ok {
				continue
			}
			if _, ok := vos[id]; !ok {
				diffs = append(diffs, fmt.Sprintf("conference %d: deleted, but no tombstone", id))
			}
		}
	}
	sort.Strings(diffs)
	return diffs
}

// awaitProjection polls both tables until the VO table is the projection of the conference
// table, and fails t with the differences if it is not within the deadline. check, when not
// nil, is called on every round and stops the wait with its error (a process that died).
func awaitProjection(t *testing.T, db *pgx.Conn, created map[int64]bool, mode strictness, within time.Duration, check func() error) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(within)
	var diffs []string
	tick := time.NewTicker(100 * time.Millisecond) // polling two tables against the deadline
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		live, vos, err := snapshot(ctx, db)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		diffs = projectionDiff(live, vos, created, mode)
		if len(diffs) == 0 {
			tombstones := 0
			for _, v := range vos {
				if v.Deleted {
					tombstones++
				}
			}
			t.Logf("converged after %s: %d live conferences, %d VO rows of which %d tombstones, %d conferences created",
				time.Since(start).Round(time.Millisecond), len(live), len(vos), tombstones, len(created))
			return
		}
		if check != nil {
			if err := check(); err != nil {
				t.Fatalf("while waiting for convergence: %v (%d differences, first: %s)", err, len(diffs), diffs[0])
			}
		}
		if time.Now().After(deadline) {
			break
		}
		<-tick.C
	}
	shown := diffs
	if len(shown) > 30 {
		shown = slices.Clone(shown[:30])
		shown = append(shown, fmt.Sprintf("… and %d more", len(diffs)-30))
	}
	t.Fatalf("the VO table is not the projection of the conference table after %s; %d differences:\n%s",
		within, len(diffs), strings.Join(shown, "\n"))
}
