package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"conferencego/bench/stack"
)

// The baseline is only a fair floor if it answers what api-conference answers and writes what
// it writes. So the test starts api-conference on a scratch database (which migrates it), serves
// the baseline over the same tables, sends both the same requests and compares the answers
// byte for byte (or, for writes, but for the new row's id and times), and the outbox rows.
func TestAnswersAsAPIConferenceDoes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adminURL := os.Getenv("ADMIN_URL")
	if adminURL == "" {
		adminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	db, err := stack.CreateDatabase(ctx, adminURL, "conferencego_pgxbaseline_")
	if errors.Is(err, stack.ErrUnreachable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Drop(); err != nil {
			t.Error(err)
		}
	})
	bin, err := stack.Build(ctx, t.TempDir(), stack.Conference)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := stack.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	ours, err := stack.Start(ctx, stack.Spec{Name: stack.Conference, Bin: bin, Addr: addr, Output: io.Discard,
		Env: append(os.Environ(), "DATABASE_URL="+db.URL, "LOG_LEVEL=warn", "OUTBOX_RETENTION=off")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ours.Stop(10 * time.Second) })

	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	base := httptest.NewServer(newMux(pool, slog.New(slog.NewTextHandler(os.Stderr, nil))))
	t.Cleanup(base.Close)

	loc := created(t, do(t, "POST", ours.URL()+"/api/locations/", `{"name":"Hall","city":"Austin","room_count":3,"state":"TX"}`))
	var ids []int64
	for i := range 3 {
		ids = append(ids, created(t, do(t, "POST", ours.URL()+"/api/conferences/",
			fmt.Sprintf(`{"name":"Seed %d","starts":"2027-03-01","ends":"2027-03-03T12:30:00.5Z","max_presentations":5,"max_attendees":100,"location":%d}`, i, loc))))
	}

	same := func(method, path, body string, headers ...string) {
		t.Helper()
		a, b := do(t, method, ours.URL()+path, body), do(t, method, base.URL+path, body)
		if a.status != b.status || a.body != b.body {
			t.Errorf("%s %s:\nours %d %s\npgx  %d %s", method, path, a.status, a.body, b.status, b.body)
		}
		for _, h := range headers {
			if a.header.Get(h) != b.header.Get(h) {
				t.Errorf("%s %s: header %s: ours %q, pgx %q", method, path, h, a.header.Get(h), b.header.Get(h))
			}
		}
	}
	same("GET", fmt.Sprintf("/api/conferences/%d/", ids[1]), "")
	same("GET", "/api/conferences/?limit=2", "", "ETag", "Cache-Control", "Link")
	same("GET", fmt.Sprintf("/api/conferences/?limit=2&after=%d", ids[1]), "", "ETag", "Cache-Control", "Link")
	sameStatus := func(method, path, body string, want int) {
		t.Helper()
		a, b := do(t, method, ours.URL()+path, body), do(t, method, base.URL+path, body)
		if a.status != want || b.status != want {
			t.Errorf("%s %s: ours %d, pgx %d, want %d (pgx said %s)", method, path, a.status, b.status, want, b.body)
		}
	}
	sameStatus("GET", "/api/conferences/999999/", "", http.StatusNotFound)
	sameStatus("PUT", "/api/conferences/999999/", `{"name":"x"}`, http.StatusNotFound)
	sameStatus("POST", "/api/conferences/", `{"name":"x","starts":"2027-03-01","ends":"2027-03-02","max_presentations":1,"max_attendees":1,"location":999999}`, http.StatusBadRequest)
	sameStatus("POST", "/api/conferences/", `{"name":"x","starts":"2027-03-03","ends":"2027-03-02","max_presentations":1,"max_attendees":1,"location":1}`, http.StatusBadRequest)
	sameStatus("PUT", fmt.Sprintf("/api/conferences/%d/", ids[0]), `{"ends":"2020-01-01"}`, http.StatusBadRequest)

	// Writes: the same answer but for the new row's id and times, and the same outbox row.
	post := fmt.Sprintf(`{"name":"New","description":" about ","starts":"2027-05-01T09:00:00Z","ends":"2027-05-02T10:00:00.25Z","max_presentations":2,"max_attendees":30,"location":%d}`, loc)
	a, b := do(t, "POST", ours.URL()+"/api/conferences/", post), do(t, "POST", base.URL+"/api/conferences/", post)
	idA, idB := created(t, a), created(t, b)
	if got, want := b.header.Get("Location"), fmt.Sprintf("/api/conferences/%d/", idB); got != want {
		t.Errorf("pgx POST Location %q, want %q", got, want)
	}
	sameWrite(t, "POST", a, b)
	sameOutbox(t, ctx, pool, "conference.created", idA, idB)

	put := `{"name":"Renamed","max_attendees":31}`
	a = do(t, "PUT", fmt.Sprintf("%s/api/conferences/%d/", ours.URL(), idA), put)
	b = do(t, "PUT", fmt.Sprintf("%s/api/conferences/%d/", base.URL, idB), put)
	if a.status != http.StatusOK || b.status != http.StatusOK {
		t.Fatalf("PUT: ours %d %s, pgx %d %s", a.status, a.body, b.status, b.body)
	}
	sameWrite(t, "PUT", a, b)
	sameOutbox(t, ctx, pool, "conference.updated", idA, idB)

	// Both bumped the change marker: the list's ETag moved with each write.
	var marker int64
	if err := pool.QueryRow(ctx, selectMarker).Scan(&marker); err != nil {
		t.Fatal(err)
	}
	if want := int64(len(ids) + 4); marker != want {
		t.Errorf("change marker %d after %d writes", marker, want)
	}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func created(t *testing.T, a answer) int64 {
	t.Helper()
	var v struct{ ID int64 }
	if a.status != http.StatusCreated {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	if err := json.Unmarshal([]byte(a.body), &v); err != nil || v.ID == 0 {
		t.Fatalf("create: no id in %s: %v", a.body, err)
	}
	return v.ID
}

// sameWrite compares two answers to a write with the id, href, created and updated taken out.
func sameWrite(t *testing.T, what string, a, b answer) {
	t.Helper()
	strip := func(s string) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("%s: %s: %v", what, s, err)
		}
		for _, k := range []string{"id", "href", "created", "updated"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: no %q in %s", what, k, s)
			}
			delete(m, k)
		}
		out, _ := json.Marshal(m)
		return string(out)
	}
	if a.status != b.status || strip(a.body) != strip(b.body) {
		t.Errorf("%s:\nours %d %s\npgx  %d %s", what, a.status, a.body, b.status, b.body)
	}
}

// sameOutbox compares the outbox rows of type typ for conferences idA and idB, each payload
// with its own id and href taken out (and checked).
func sameOutbox(t *testing.T, ctx context.Context, pool *pgxpool.Pool, typ string, idA, idB int64) {
	t.Helper()
	read := func(id int64) string {
		var payload string
		var version int64
		err := pool.QueryRow(ctx, `SELECT version, (payload - 'id' - 'href')::text FROM outbox
			WHERE conference_id = $1 AND type = $2 AND payload->>'id' = $1::text AND payload->>'href' = '/api/conferences/' || $1 || '/'`,
			id, typ).Scan(&version, &payload)
		if errors.Is(err, pgx.ErrNoRows) {
			t.Fatalf("no %s outbox row with its id and href for conference %d", typ, id)
		}
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("version %d %s", version, payload)
	}
	if a, b := read(idA), read(idB); a != b {
		t.Errorf("%s outbox rows differ:\nours %s\npgx  %s", typ, a, b)
	}
}
