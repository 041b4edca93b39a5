// Command pgxbaseline is the floor `task bench` measures api-conference against: a minimal
// net/http server over a pgx/v5 pool (prepared statements through pgx's statement cache, the
// extended protocol) that answers the four routes the bench loads with the same JSON
// api-conference answers, from the same tables:
//
//   - GET /api/conferences/{id}/: the same SELECT (the conference with its location);
//   - GET /api/conferences/?limit=N&after=K: the same change-marker read (the ETag) and the
//     same page of rows, both sent in one round trip as a pgx batch;
//   - POST /api/conferences/ and PUT /api/conferences/{id}/: the same change as api-conference
//     makes (the conference row, its outbox row with the same payload, the change marker's
//     bump and the relay's NOTIFY) in one statement, validated in Go first.
//
// It is not a second implementation of the service: it serves only these routes, validates
// only what the bench sends, and a PUT always makes a new version (api-conference makes none
// for a PUT that changes nothing; the bench's PUTs always change the name).
//
// It reads DATABASE_URL and HTTP_ADDR like the services, so bench/stack starts it as it starts
// them. It does not migrate: it is pointed at a database api-conference has migrated (the
// bench's scratch database, which both servers share), and works in its schema "conference".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"conferencego/syncer/changeevent"
)

// schema is api-conference's schema (its postgres.Schema, internal to it).
const schema = "conference"

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, os.Getenv("DATABASE_URL"), os.Getenv("HTTP_ADDR")); err != nil {
		log.Error("pgxbaseline stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, dsn, addr string) error {
	if dsn == "" || addr == "" {
		return errors.New("DATABASE_URL and HTTP_ADDR must be set")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	// As many connections as api-conference's database/sql pool allows (pgschema.Open), so
	// that neither side wins by holding more of Postgres.
	cfg.MaxConns = 20
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	srv := &http.Server{Addr: addr, Handler: newMux(pool, log), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("listen: %w", err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shut)
}

func newMux(pool *pgxpool.Pool, log *slog.Logger) *http.ServeMux {
	h := &handlers{pool: pool, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /api/conferences/{$}", h.list)
	mux.HandleFunc("POST /api/conferences/{$}", h.create)
	mux.HandleFunc("GET /api/conferences/{id}/{$}", h.get)
	mux.HandleFunc("PUT /api/conferences/{id}/{$}", h.update)
	return mux
}

type handlers struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	var c row
	if err := h.pool.QueryRow(r.Context(), selectOne, id).Scan(c.dest()...); err != nil {
		h.fail(w, "get conference", err)
		return
	}
	h.send(w, http.StatusOK, envelopeJSON{Conference: c.detail()})
}

func (h *handlers) list(w http.ResponseWriter, r *http.Request) {
	limit, after := 100, int64(0)
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			http.Error(w, "limit must be a whole number from 1 to 1000", http.StatusBadRequest)
			return
		}
		limit = n
	}
	if s := r.URL.Query().Get("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "after must be a whole number, 0 or more", http.StatusBadRequest)
			return
		}
		after = n
	}
	// One round trip: the marker is read before the page (each statement of the batch has a
	// snapshot of its own, taken in order), so the ETag is never newer than the list.
	var b pgx.Batch
	b.Queue(selectMarker)
	b.Queue(selectPage, after, limit+1)
	res := h.pool.SendBatch(r.Context(), &b)
	defer res.Close()
	var marker int64
	if err := res.QueryRow().Scan(&marker); err != nil {
		h.fail(w, "read change marker", err)
		return
	}
	rows, err := res.Query()
	if err != nil {
		h.fail(w, "list conferences", err)
		return
	}
	page := pageJSON{Conferences: make([]changeevent.ListedConference, 0, limit)}
	var c row
	more := false
	var last int64
	for rows.Next() {
		if len(page.Conferences) == limit {
			more = true
			continue
		}
		if err := rows.Scan(c.dest()...); err != nil {
			rows.Close()
			h.fail(w, "list conferences", err)
			return
		}
		page.Conferences = append(page.Conferences, c.listed())
		last = c.ID
	}
	if err := rows.Err(); err != nil {
		h.fail(w, "list conferences", err)
		return
	}
	w.Header().Set("ETag", fmt.Sprintf(`"m%d-l%d-a%d"`, marker, limit, after))
	w.Header().Set("Cache-Control", "no-cache")
	if more {
		next := fmt.Sprintf("%s?limit=%d&after=%d", changeevent.PathList, limit, last)
		page.Next = &next
		w.Header().Set("Link", "<"+next+`>; rel="next"`)
	}
	h.send(w, http.StatusOK, page)
}

// input is a conference's fields as a create or update sends them; nil means not given.
type input struct {
	Name             *string `json:"name"`
	Starts           *string `json:"starts"`
	Ends             *string `json:"ends"`
	Description      *string `json:"description"`
	MaxPresentations *int    `json:"max_presentations"`
	MaxAttendees     *int    `json:"max_attendees"`
	Location         *int64  `json:"location"`
}

// patch is a validated input, as the statements' arguments.
type patch struct {
	name, description              *string
	starts, ends                   *time.Time
	maxPresentations, maxAttendees *int
	location                       *int64
}

// parseWhen reads a time as api-conference does: RFC 3339 or a date, meaning midnight UTC.
func parseWhen(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
		if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
			return t.UTC().Truncate(time.Microsecond), true
		}
	}
	return time.Time{}, false
}

// decode reads and validates the body; with all, every field but description is required.
func decode(w http.ResponseWriter, r *http.Request, all bool) (patch, error) {
	var in input
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil {
		return patch{}, fmt.Errorf("body: %w", err)
	}
	var p patch
	var problems []string
	if in.Name != nil {
		n := strings.TrimSpace(*in.Name)
		if n == "" {
			problems = append(problems, "name must not be empty")
		}
		p.name = &n
	}
	if in.Description != nil {
		d := strings.TrimSpace(*in.Description)
		p.description = &d
	} else if all {
		d := ""
		p.description = &d
	}
	for _, f := range []struct {
		name string
		in   *string
		out  **time.Time
	}{{"starts", in.Starts, &p.starts}, {"ends", in.Ends, &p.ends}} {
		if f.in == nil {
			continue
		}
		t, ok := parseWhen(*f.in)
		if !ok {
			problems = append(problems, f.name+" must be an RFC 3339 time or a date")
			continue
		}
		*f.out = &t
	}
	if p.starts != nil && p.ends != nil && p.ends.Before(*p.starts) {
		problems = append(problems, "ends must not be before starts")
	}
	for _, f := range []struct {
		name string
		n    *int
	}{{"max_presentations", in.MaxPresentations}, {"max_attendees", in.MaxAttendees}} {
		if f.n != nil && (*f.n < 0 || *f.n > 1_000_000) {
			problems = append(problems, f.name+" must be between 0 and 1000000")
		}
	}
	p.maxPresentations, p.maxAttendees = in.MaxPresentations, in.MaxAttendees
	if in.Location != nil && *in.Location <= 0 {
		problems = append(problems, "location must be the id of an existing location")
	}
	p.location = in.Location
	if all && (p.name == nil || p.starts == nil || p.ends == nil || p.maxPresentations == nil || p.maxAttendees == nil || p.location == nil) {
		problems = append(problems, "name, starts, ends, max_presentations, max_attendees and location are required")
	}
	if len(problems) > 0 {
		return patch{}, errors.New(strings.Join(problems, "; "))
	}
	return p, nil
}

func (h *handlers) create(w http.ResponseWriter, r *http.Request) {
	p, err := decode(w, r, true)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var c row
	var notified bool
	err = h.pool.QueryRow(r.Context(), insertOne, *p.name, *p.starts, *p.ends, *p.description,
		*p.maxPresentations, *p.maxAttendees, *p.location).Scan(append(c.dest(), &notified)...)
	if errors.Is(err, pgx.ErrNoRows) {
		http.Error(w, fmt.Sprintf("no location with id %d", *p.location), http.StatusBadRequest)
		return
	}
	if err != nil {
		h.fail(w, "create conference", err)
		return
	}
	w.Header().Set("Location", changeevent.Href(c.ID))
	h.send(w, http.StatusCreated, c.detail())
}

func (h *handlers) update(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	p, err := decode(w, r, false)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var c row
	var notified bool
	err = h.pool.QueryRow(r.Context(), updateOne, id, p.name, p.starts, p.ends, p.description,
		p.maxPresentations, p.maxAttendees, p.location).Scan(append(c.dest(), &notified)...)
	if err != nil {
		h.fail(w, "update conference", err)
		return
	}
	h.send(w, http.StatusOK, c.detail())
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.Error(w, "no such conference", http.StatusNotFound)
		return 0, false
	}
	return id, true
}

// send answers v as JSON, encoded as fiber's c.JSON encodes it (json.Marshal, no newline).
func (h *handlers) send(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.log.Error("encode answer", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// fail answers a database error: no row is 404, a broken constraint (a missing location, ends
// before starts) is 400, anything else 500.
func (h *handlers) fail(w http.ResponseWriter, what string, err error) {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		http.Error(w, "no such conference", http.StatusNotFound)
	case errors.As(err, &pgErr) && (pgErr.Code == "23503" || pgErr.Code == "23514"):
		http.Error(w, pgErr.Message, http.StatusBadRequest)
	default:
		h.log.Error(what, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}
