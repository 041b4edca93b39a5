package server_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/go-cmp/cmp"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"conferencego/api-attendee/internal/postgres"
	"conferencego/api-attendee/internal/postgres/pgtest"
	"conferencego/api-attendee/internal/server"
	"conferencego/httpedge"
	"conferencego/httpedge/edgetest"
)

// testToken is the SYNC_TOKEN of the test servers.
const testToken = "test-sync-token-0123456789"

type fixture struct {
	app   *fiber.App
	db    *bun.DB
	store *postgres.Store
	base  string // http://127.0.0.1:port
}

func setup(tb testing.TB) fixture {
	tb.Helper()
	return setupWith(tb, server.Options{CORSAllowedOrigins: []string{"http://localhost:3000"}, SyncToken: testToken})
}

func setupWith(tb testing.TB, opts server.Options) fixture {
	tb.Helper()
	db, _ := pgtest.NewSchema(tb)
	store := postgres.NewStore(db)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	app := server.New(log, store, opts)
	return fixture{app: app, db: db, store: store, base: edgetest.Serve(tb, app)}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request. body is a string or []byte sent as is, or a value marshalled as JSON;
// headers are name, value pairs. A body gets application/json unless headers set one.
func (f fixture) do(tb testing.TB, method, path string, body any, headers ...string) response {
	tb.Helper()
	var r io.Reader
	isJSON := false
	switch b := body.(type) {
	case nil:
	case string:
		r, isJSON = strings.NewReader(b), true
	case []byte:
		r, isJSON = bytes.NewReader(b), true
	default:
		data, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		r, isJSON = bytes.NewReader(data), true
	}
	req, err := http.NewRequest(method, f.base+path, r)
	if err != nil {
		tb.Fatal(err)
	}
	if isJSON {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return send(tb, req)
}

func send(tb testing.TB, req *http.Request) response {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return checkAPI(tb, req, response{status: resp.StatusCode, header: resp.Header, body: data})
}

// doRaw sends body with the given Content-Type ("" sends none) and headers.
func (f fixture) doRaw(tb testing.TB, method, path, body, contentType string, headers ...string) response {
	tb.Helper()
	req, err := http.NewRequest(method, f.base+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return send(tb, req)
}

// doOversized announces a body of size bytes and sends only the headers: over the server's
// own limit it must refuse from Content-Length alone. (Sending the body too would race the
// server's close against the client's write, and the client could see a reset.)
func (f fixture) doOversized(tb testing.TB, method, path string, size int, headers ...string) response {
	tb.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.base, "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		tb.Fatal(err)
	}
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\nContent-Type: application/json\r\n", method, path, size)
	for i := 0; i+1 < len(headers); i += 2 {
		head += headers[i] + ": " + headers[i+1] + "\r\n"
	}
	if _, err := io.WriteString(conn, head+"\r\n"); err != nil {
		tb.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		tb.Fatalf("%s %s with a %d-byte body: %v", method, path, size, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return checkAPI(tb, edgetest.Request(tb, method, f.base+path), response{status: resp.StatusCode, header: resp.Header, body: data})
}

// must sends a request and fails unless it gets want; it decodes the body into out if given.
func (f fixture) must(tb testing.TB, want int, method, path string, body any, out any, headers ...string) response {
	tb.Helper()
	r := f.do(tb, method, path, body, headers...)
	if r.status != want {
		tb.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			tb.Fatalf("%s %s: decode %s: %v", method, path, r.body, err)
		}
	}
	return r
}

// snapshot is what a rejected request must leave unchanged.
type snapshot struct {
	Conferences, Attendees, Badges int
	Digest                         string
}

func (f fixture) snapshot(tb testing.TB) snapshot {
	tb.Helper()
	var s snapshot
	err := f.db.NewRaw(`SELECT
		(SELECT count(*) FROM conference_vos), (SELECT count(*) FROM attendees), (SELECT count(*) FROM badges),
		md5(coalesce((SELECT string_agg(v::text, ',' ORDER BY conference_id) FROM conference_vos v), '') ||
		    coalesce((SELECT string_agg(a::text, ',' ORDER BY id) FROM attendees a), '') ||
		    coalesce((SELECT string_agg(b::text, ',' ORDER BY attendee_id) FROM badges b), ''))`).
		Scan(context.Background(), &s.Conferences, &s.Attendees, &s.Badges, &s.Digest)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// checkProblem asserts that r is a problem+json answer with status want.
func checkProblem(tb testing.TB, r response, want int) problemBody {
	tb.Helper()
	if r.status != want {
		tb.Errorf("status %d, want %d: %s", r.status, want, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		tb.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p problemBody
	if err := json.Unmarshal(r.body, &p); err != nil {
		tb.Fatalf("problem body %q: %v", r.body, err)
	}
	if p.Status != r.status || p.Title == "" || p.Type == "" {
		tb.Errorf("incomplete problem: %+v", p)
	}
	return p
}

type conferenceVO struct {
	ID           int64  `json:"id"`
	ImportHref   string `json:"import_href"`
	Name         string `json:"name"`
	Starts       string `json:"starts"`
	Ends         string `json:"ends"`
	MaxAttendees int    `json:"max_attendees"`
	Version      int64  `json:"version"`
}

type attendeeJSON struct {
	ID          int64  `json:"id"`
	Href        string `json:"href"`
	Email       string `json:"email"`
	Name        string `json:"name"`
	CompanyName string `json:"company_name"`
	Created     string `json:"created"`
	HasBadge    bool   `json:"has_badge"`
	Conference  struct {
		Name       string `json:"name"`
		ImportHref string `json:"import_href"`
	} `json:"conference"`
}

type attendeeListItem struct {
	Href       string `json:"href"`
	Name       string `json:"name"`
	Conference string `json:"conference"`
}

// mustConference puts conference id into the VO table the way every change arrives.
func (f fixture) mustConference(tb testing.TB, id int64, maxAttendees int) {
	tb.Helper()
	pgtest.MustConference(tb, f.store, id, maxAttendees)
}

func (f fixture) mustRegister(tb testing.TB, conferenceID int64, email string) attendeeJSON {
	tb.Helper()
	var a attendeeJSON
	f.must(tb, 201, "POST", fmt.Sprintf("/api/conferences/%d/attendees/", conferenceID),
		map[string]any{"email": email, "name": "Person " + email}, &a)
	return a
}

func TestConferenceVOs(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mustConference(t, 3, 10)
	f.mustConference(t, 5, 20)
	f.mustConference(t, 9, 30)
	if _, err := f.store.ApplyChanges(context.Background(), batchOf(pgtest.Deleted(5, 2))); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/conferences/", "/api/conferences"} {
		var list struct{ Conferences []conferenceVO }
		f.must(t, 200, "GET", path, nil, &list)
		want := []conferenceVO{
			{ID: 3, ImportHref: "/api/conferences/3/", Name: "Conference 3", Starts: "2027-03-01T09:00:00Z", Ends: "2027-03-03T09:00:00Z", MaxAttendees: 10, Version: 1},
			{ID: 9, ImportHref: "/api/conferences/9/", Name: "Conference 9", Starts: "2027-03-01T09:00:00Z", Ends: "2027-03-03T09:00:00Z", MaxAttendees: 30, Version: 1},
		}
		if diff := cmp.Diff(want, list.Conferences); diff != "" {
			t.Errorf("GET %s (-want +got):\n%s", path, diff)
		}
	}
	var one conferenceVO
	f.must(t, 200, "GET", "/api/conferences/9/", nil, &one)
	if one.ID != 9 || one.MaxAttendees != 30 {
		t.Errorf("detail: %+v", one)
	}
	checkProblem(t, f.do(t, "GET", "/api/conferences/5/", nil), 404)
	checkProblem(t, f.do(t, "GET", "/api/conferences/77/", nil), 404)

	var empty struct{ Conferences []conferenceVO }
	g := setup(t)
	r := g.must(t, 200, "GET", "/api/conferences/", nil, &empty)
	if !strings.Contains(string(r.body), `"conferences":[]`) {
		t.Errorf("empty list renders as %s, want an empty array", r.body)
	}
}

func TestRegistrationRules(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mustConference(t, 1, 2)
	f.mustConference(t, 2, 5)
	if _, err := f.store.ApplyChanges(context.Background(), batchOf(pgtest.Deleted(2, 2))); err != nil {
		t.Fatal(err)
	}

	var a attendeeJSON
	f.must(t, 201, "POST", "/api/conferences/1/attendees/", map[string]any{"email": "ada@example.com", "name": "Ada", "company_name": "Engines"}, &a)
	want := attendeeJSON{ID: a.ID, Href: fmt.Sprintf("/api/attendees/%d/", a.ID), Email: "ada@example.com", Name: "Ada", CompanyName: "Engines", Created: a.Created}
	want.Conference.Name, want.Conference.ImportHref = "Conference 1", "/api/conferences/1/"
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("registered (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name string
		path string
		body string
		want int
	}{
		{"unknown conference", "/api/conferences/99/attendees/", `{"email": "b@example.com", "name": "B"}`, 404},
		{"unknown conference, flat", "/api/attendees/", `{"conference": 99, "email": "b@example.com", "name": "B"}`, 404},
		{"deleted conference", "/api/conferences/2/attendees/", `{"email": "b@example.com", "name": "B"}`, 409},
		{"deleted conference, flat", "/api/attendees/", `{"conference": "/api/conferences/2/", "email": "b@example.com", "name": "B"}`, 409},
		{"same e-mail", "/api/conferences/1/attendees/", `{"email": "ada@example.com", "name": "Ada again"}`, 409},
		{"same e-mail, other case", "/api/attendees/", `{"conference": "1", "email": "ADA@EXAMPLE.COM", "name": "Ada"}`, 409},
	} {
		before := f.snapshot(t)
		checkProblem(t, f.doRaw(t, "POST", tc.path, tc.body, "application/json"), tc.want)
		if diff := cmp.Diff(before, f.snapshot(t)); diff != "" {
			t.Errorf("%s changed the database:\n%s", tc.name, diff)
		}
	}

	// The original front-end's ways of naming the conference.
	var b attendeeJSON
	f.must(t, 201, "POST", "/api/attendees/", map[string]any{"conference": "/api/conferences/1/", "email": "bob@example.com", "name": "Bob"}, &b)
	r := f.do(t, "POST", "/api/attendees/", map[string]any{"conference": 1, "email": "cy@example.com", "name": "Cy"})
	checkProblem(t, r, 409) // full: two places, two taken
	var list struct{ Attendees []attendeeListItem }
	f.must(t, 200, "GET", "/api/conferences/1/attendees/", nil, &list)
	if len(list.Attendees) != 2 || list.Attendees[0].Name != "Ada" || list.Attendees[1].Name != "Bob" {
		t.Errorf("attendees of conference 1: %+v", list.Attendees)
	}
	checkProblem(t, f.do(t, "GET", "/api/conferences/99/attendees/", nil), 404)
}

func TestConcurrentRegistrationsNeverOverfill(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mustConference(t, 7, 10)
	statuses := make(chan int, 40)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			body := fmt.Sprintf(`{"conference": "/api/conferences/7/", "email": "p%d@example.com", "name": "P%d"}`, i, i)
			req, _ := http.NewRequest("POST", f.base+"/api/attendees/", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if diff := cmp.Diff(map[int]int{201: 10, 409: 30}, count); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if s := f.snapshot(t); s.Attendees != 10 {
		t.Errorf("%d attendees stored, want 10", s.Attendees)
	}
}

func TestAttendeeLifecycle(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mustConference(t, 1, 10)
	a := f.mustRegister(t, 1, "ada@example.com")

	var got attendeeJSON
	f.must(t, 200, "GET", a.Href, nil, &got)
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("detail differs from the creation answer (-created +detail):\n%s", diff)
	}
	f.must(t, 200, "PUT", a.Href, map[string]any{"name": "Ada Lovelace", "company_name": nil}, &got)
	if got.Name != "Ada Lovelace" || got.Email != "ada@example.com" || got.CompanyName != "" {
		t.Errorf("after PUT: %+v", got)
	}

	r := f.must(t, 201, "POST", a.Href+"badge/", nil, &got)
	if !got.HasBadge {
		t.Errorf("after badge: has_badge false: %s", r.body)
	}
	f.must(t, 200, "POST", a.Href+"badge", nil, &got) // again: idempotent
	if !got.HasBadge {
		t.Errorf("second badge call: has_badge false")
	}
	if s := f.snapshot(t); s.Badges != 1 {
		t.Errorf("%d badges, want 1", s.Badges)
	}

	// The original's list encoder, which its React attendee list renders: the conference is
	// its name, a string, and nothing else is in an item.
	var all struct{ Attendees []map[string]any }
	f.must(t, 200, "GET", "/api/attendees/", nil, &all)
	want := []map[string]any{{"href": a.Href, "name": "Ada Lovelace", "conference": "Conference 1"}}
	if diff := cmp.Diff(want, all.Attendees); diff != "" {
		t.Errorf("all attendees (-want +got):\n%s", diff)
	}
	var ofConference struct{ Attendees []map[string]any }
	f.must(t, 200, "GET", "/api/conferences/1/attendees/", nil, &ofConference)
	if diff := cmp.Diff(want, ofConference.Attendees); diff != "" {
		t.Errorf("attendees of conference 1 (-want +got):\n%s", diff)
	}

	// The conference is deleted upstream: its attendee keeps it.
	if _, err := f.store.ApplyChanges(context.Background(), batchOf(pgtest.Deleted(1, 2))); err != nil {
		t.Fatal(err)
	}
	f.must(t, 200, "GET", a.Href, nil, &got)
	if got.Conference.Name != "Conference 1" {
		t.Errorf("attendee of a deleted conference: %+v", got.Conference)
	}

	var deleted map[string]bool
	f.must(t, 200, "DELETE", a.Href, nil, &deleted)
	if !deleted["deleted"] {
		t.Errorf("DELETE answered %v", deleted)
	}
	checkProblem(t, f.do(t, "GET", a.Href, nil), 404)
	checkProblem(t, f.do(t, "DELETE", a.Href, nil), 404)
	checkProblem(t, f.do(t, "POST", a.Href+"badge/", nil), 404)
}

func TestRoutingErrors(t *testing.T) {
	t.Parallel()
	f := setup(t)
	checkProblem(t, f.do(t, "GET", "/api/nothing-here/", nil), 404)
	checkProblem(t, f.do(t, "PATCH", "/api/attendees/1/", nil), 405)
	checkProblem(t, f.do(t, "POST", "/api/conferences/", "{}"), 405)
	checkProblem(t, f.do(t, "DELETE", "/api/conferences/1/", nil), 405)
	for _, path := range []string{"/api/attendees/abc/", "/api/attendees/0/", "/api/attendees/-1/", "/api/attendees/99999999999999999999/", "/api/conferences/1.5/", "/api/attendees/%00/"} {
		checkProblem(t, f.do(t, "GET", path, nil), 404)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.must(t, 200, "GET", "/healthz", nil, nil)
	f.must(t, 200, "GET", "/readyz", nil, nil)
	f.must(t, 200, "GET", "/api/conferences/", nil, nil)
	r := f.must(t, 200, "GET", "/metrics", nil, nil)
	for _, want := range []string{
		`http_requests_total{method="GET",route="/api/conferences",status="200"} 1`,
		`http_response_body_bytes_total{method="GET",route="/api/conferences"}`,
		"http_request_duration_seconds_bucket",
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestReadyzAsksEveryDependency(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1, so every query fails to connect.
	sqldb, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	db := bun.NewDB(sqldb, pgdialect.New())
	t.Cleanup(func() { db.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	app := server.New(log, postgres.NewStore(db), server.Options{})
	f := fixture{app: app, db: db, base: edgetest.Serve(t, app)}
	checkProblem(t, f.do(t, "GET", "/readyz", nil), 503)
	f.must(t, 200, "GET", "/healthz", nil, nil)

	g := setupWith(t, server.Options{ReadyChecks: []httpedge.Check{{Name: "redis", Ping: func(context.Context) error { return io.ErrUnexpectedEOF }}}})
	p := checkProblem(t, g.do(t, "GET", "/readyz", nil), 503)
	if !strings.Contains(p.Detail, "redis") {
		t.Errorf("readyz does not name the failing dependency: %+v", p)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.do(t, "OPTIONS", "/api/attendees/", nil,
		"Origin", "http://localhost:3000", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type")
	if r.status != 204 {
		t.Errorf("preflight status %d", r.status)
	}
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "http://localhost:3000" {
		t.Errorf("Access-Control-Allow-Origin = %q", got)
	}
	if got := r.header.Get("Access-Control-Allow-Methods"); !strings.Contains(got, "POST") {
		t.Errorf("Access-Control-Allow-Methods = %q", got)
	}
	r = f.do(t, "GET", "/api/conferences/", nil, "Origin", "http://localhost:3000")
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "http://localhost:3000" {
		t.Errorf("simple request: Access-Control-Allow-Origin = %q", got)
	}
	r = f.do(t, "OPTIONS", "/api/attendees/", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("foreign origin allowed: %q", got)
	}
}

// checkAPI fails the test unless the answer r to req is one the document describes (see
// edgetest.Contract.Check). It returns r, so that a request helper can wrap its answer in it.
func checkAPI(tb testing.TB, req *http.Request, r response) response {
	tb.Helper()
	edgetest.ContractOf(tb, "openapi.json").Check(tb, req, edgetest.Answer{Status: r.status, Header: r.header, Body: r.body})
	return r
}
