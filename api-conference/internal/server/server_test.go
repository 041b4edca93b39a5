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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/go-cmp/cmp"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"conferencego/api-conference/internal/postgres"
	"conferencego/api-conference/internal/postgres/pgtest"
	"conferencego/api-conference/internal/server"
	"conferencego/httpedge/edgetest"
)

type fixture struct {
	app   *fiber.App
	db    *bun.DB
	store *postgres.Store
	base  string // http://127.0.0.1:port
}

func setup(tb testing.TB) fixture {
	tb.Helper()
	db, _ := pgtest.NewSchema(tb)
	store := postgres.NewStore(db)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	app := server.New(log, store, server.Options{CORSAllowedOrigins: []string{"http://localhost:3000"}})
	return fixture{app: app, db: db, store: store, base: edgetest.Serve(tb, app)}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request through the app. body is a string or []byte sent as is, or a value
// marshalled as JSON; headers are name, value pairs. A JSON body gets application/json
// unless headers set a Content-Type.
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
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return checkAPI(tb, req, response{status: resp.StatusCode, header: resp.Header, body: data})
}

// must sends a request and fails unless it gets want; it decodes the body into out if given.
func (f fixture) must(tb testing.TB, want int, method, path string, body any, out any) response {
	tb.Helper()
	r := f.do(tb, method, path, body)
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
	Locations, Conferences, Presentations, Outbox int
	VersionSum, Marker                            int64
	Digest                                        string
}

func (f fixture) snapshot(tb testing.TB) snapshot {
	tb.Helper()
	var s snapshot
	err := f.db.NewRaw(`SELECT
		(SELECT count(*) FROM locations), (SELECT count(*) FROM conferences), (SELECT count(*) FROM presentations),
		(SELECT count(*) FROM outbox), (SELECT coalesce(sum(version), 0) FROM conferences),
		(SELECT coalesce(sum(n), 0) FROM change_marker),
		md5(coalesce((SELECT string_agg(l::text, ',' ORDER BY id) FROM locations l), '') ||
		    coalesce((SELECT string_agg(c::text, ',' ORDER BY id) FROM conferences c), '') ||
		    coalesce((SELECT string_agg(p::text, ',' ORDER BY id) FROM presentations p), ''))`).
		Scan(context.Background(), &s.Locations, &s.Conferences, &s.Presentations, &s.Outbox, &s.VersionSum, &s.Marker, &s.Digest)
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

type location struct {
	ID         int64   `json:"id"`
	Href       string  `json:"href"`
	Name       string  `json:"name"`
	City       string  `json:"city"`
	RoomCount  int     `json:"room_count"`
	State      string  `json:"state"`
	PictureURL *string `json:"picture_url"`
}

type conf struct {
	ID               int64  `json:"id"`
	Href             string `json:"href"`
	Name             string `json:"name"`
	Starts           string `json:"starts"`
	Ends             string `json:"ends"`
	Description      string `json:"description"`
	MaxPresentations int    `json:"max_presentations"`
	MaxAttendees     int    `json:"max_attendees"`
	Version          int64  `json:"version"`
	Location         struct {
		Href       string  `json:"href"`
		Name       string  `json:"name"`
		City       string  `json:"city"`
		State      string  `json:"state"`
		PictureURL *string `json:"picture_url"`
	} `json:"location"`
}

type presentation struct {
	ID             int64  `json:"id"`
	Href           string `json:"href"`
	PresenterName  string `json:"presenter_name"`
	CompanyName    string `json:"company_name"`
	PresenterEmail string `json:"presenter_email"`
	Title          string `json:"title"`
	Synopsis       string `json:"synopsis"`
	Status         string `json:"status"`
	Conference     struct {
		Href string `json:"href"`
		Name string `json:"name"`
	} `json:"conference"`
}

func (f fixture) mustLocation(tb testing.TB) location {
	tb.Helper()
	var l location
	f.must(tb, 201, "POST", "/api/locations/", map[string]any{"name": "Convention Center", "city": "Austin", "room_count": 12, "state": "TX"}, &l)
	return l
}

func (f fixture) mustConference(tb testing.TB, locationID int64, name string) conf {
	tb.Helper()
	var c conf
	f.must(tb, 201, "POST", "/api/conferences/", map[string]any{
		"name": name, "starts": "2027-03-01T09:00:00Z", "ends": "2027-03-03T17:00:00Z", "description": "Gophers",
		"max_presentations": 2, "max_attendees": 100, "location": locationID,
	}, &c)
	return c
}

func TestStates(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var out struct {
		States []struct{ Name, Abbreviation string } `json:"states"`
	}
	f.must(t, 200, "GET", "/api/states/", nil, &out)
	if len(out.States) != 51 || out.States[0].Name != "Alabama" || out.States[0].Abbreviation != "AL" {
		t.Errorf("states: %d, first %+v", len(out.States), out.States[0])
	}
	// Both spellings of every path are served.
	f.must(t, 200, "GET", "/api/states", nil, nil)
}

func TestLocationLifecycle(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var created location
	r := f.must(t, 201, "POST", "/api/locations/", map[string]any{
		"name": " Convention Center ", "city": "Austin", "room_count": "12", "state": "tx", "picture_url": "https://example.com/a.png",
	}, &created)
	pic := "https://example.com/a.png"
	want := location{ID: created.ID, Href: fmt.Sprintf("/api/locations/%d/", created.ID), Name: "Convention Center",
		City: "Austin", RoomCount: 12, State: "TX", PictureURL: &pic}
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}
	if loc := r.header.Get("Location"); loc != want.Href {
		t.Errorf("Location header %q", loc)
	}
	var got location
	f.must(t, 200, "GET", want.Href, nil, &got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("detail (-want +got):\n%s", diff)
	}
	var list struct{ Locations []location }
	f.must(t, 200, "GET", "/api/locations", nil, &list)
	if len(list.Locations) != 1 || list.Locations[0].Href != want.Href {
		t.Errorf("list: %+v", list)
	}
	var updated location
	f.must(t, 200, "PUT", want.Href, map[string]any{"room_count": 30, "picture_url": nil}, &updated)
	want.RoomCount, want.PictureURL = 30, nil
	if diff := cmp.Diff(want, updated); diff != "" {
		t.Errorf("updated (-want +got):\n%s", diff)
	}
	var deleted map[string]bool
	f.must(t, 200, "DELETE", want.Href, nil, &deleted)
	if !deleted["deleted"] {
		t.Errorf("delete answered %v", deleted)
	}
	checkProblem(t, f.do(t, "GET", want.Href, nil), 404)
}

// TestPictureURLNull: a location without a picture has picture_url null, not "", wherever
// the original rendered the field (its pages test it before showing an image).
func TestPictureURLNull(t *testing.T) {
	t.Parallel()
	f := setup(t)
	loc := f.mustLocation(t)
	c := f.mustConference(t, loc.ID, "GopherCon")
	var list struct{ Locations []map[string]any }
	f.must(t, 200, "GET", "/api/locations/", nil, &list)
	var detail map[string]any
	f.must(t, 200, "GET", loc.Href, nil, &detail)
	var envelope struct {
		Conference struct{ Location map[string]any }
	}
	f.must(t, 200, "GET", c.Href, nil, &envelope)
	for name, m := range map[string]map[string]any{"list item": list.Locations[0], "detail": detail, "conference detail's location": envelope.Conference.Location} {
		if v, ok := m["picture_url"]; !ok || v != nil {
			t.Errorf("%s: picture_url = %#v (present %v), want null", name, v, ok)
		}
	}
}

func TestConferenceLifecycle(t *testing.T) {
	t.Parallel()
	f := setup(t)
	loc := f.mustLocation(t)
	// As the original front-end sends it: strings for numbers, dates without a time.
	var created conf
	f.must(t, 201, "POST", "/api/conferences/", map[string]any{
		"name": "GopherCon", "starts": "2027-03-01", "ends": "2027-03-03", "description": "Gophers",
		"max_presentations": "10", "max_attendees": "100", "location": fmt.Sprint(loc.ID),
	}, &created)
	if created.Version != 1 || created.Starts != "2027-03-01T00:00:00Z" || created.MaxAttendees != 100 ||
		created.Location.Href != loc.Href {
		t.Errorf("created: %+v", created)
	}
	var envelope struct {
		Conference conf            `json:"conference"`
		Weather    json.RawMessage `json:"weather"`
	}
	f.must(t, 200, "GET", created.Href, nil, &envelope)
	if diff := cmp.Diff(created, envelope.Conference); diff != "" {
		t.Errorf("detail (-want +got):\n%s", diff)
	}
	if string(envelope.Weather) != "null" {
		t.Errorf("weather = %s, want null", envelope.Weather)
	}
	var updated conf
	f.must(t, 200, "PUT", created.Href, map[string]any{"ends": "2027-03-04T12:00:00+02:00", "location": loc.Href}, &updated)
	if updated.Version != 2 || updated.Ends != "2027-03-04T10:00:00Z" || updated.Name != "GopherCon" {
		t.Errorf("updated: %+v", updated)
	}
	var list struct {
		Conferences []conf `json:"conferences"`
		Next        *string
	}
	f.must(t, 200, "GET", "/api/conferences", nil, &list)
	if len(list.Conferences) != 1 || list.Conferences[0].Version != 2 || list.Next != nil {
		t.Errorf("list: %+v", list)
	}
	if list.Conferences[0].Location.PictureURL != nil {
		t.Errorf("list items carry no picture_url")
	}
	f.must(t, 200, "DELETE", created.Href, nil, nil)
	checkProblem(t, f.do(t, "GET", created.Href, nil), 404)
	checkProblem(t, f.do(t, "DELETE", created.Href, nil), 404)
	// The location is free again.
	f.must(t, 200, "DELETE", loc.Href, nil, nil)
}

// TestOneDayConference sends what the original's new-conference page sends for a conference
// held on one date: starts and ends are the same YYYY-MM-DD.
func TestOneDayConference(t *testing.T) {
	t.Parallel()
	f := setup(t)
	loc := f.mustLocation(t)
	var created conf
	f.must(t, 201, "POST", "/api/conferences/", map[string]any{
		"name": "GoDay", "starts": "2027-03-01", "ends": "2027-03-01", "description": "",
		"max_presentations": "10", "max_attendees": "100", "location": fmt.Sprint(loc.ID),
	}, &created)
	if created.Starts != "2027-03-01T00:00:00Z" || created.Ends != created.Starts {
		t.Errorf("created: %+v", created)
	}
	before := f.snapshot(t)
	checkProblem(t, f.do(t, "PUT", created.Href, map[string]any{"ends": "2027-02-28"}), 400)
	if diff := cmp.Diff(before, f.snapshot(t)); diff != "" {
		t.Errorf("a refused update changed the database:\n%s", diff)
	}
}

func TestPresentationLifecycle(t *testing.T) {
	t.Parallel()
	f := setup(t)
	loc := f.mustLocation(t)
	c := f.mustConference(t, loc.ID, "GopherCon")
	body := map[string]any{"presenter_name": "Ada", "presenter_email": "ada@example.com", "title": "Go", "synopsis": "Why", "conference": c.Href}
	var p presentation
	f.must(t, 201, "POST", c.Href+"presentations/", body, &p)
	if p.Status != "SUBMITTED" || p.Conference.Href != c.Href || p.Conference.Name != "GopherCon" || p.CompanyName != "" {
		t.Errorf("created: %+v", p)
	}
	var list struct{ Presentations []presentation }
	f.must(t, 200, "GET", c.Href+"presentations", nil, &list)
	if len(list.Presentations) != 1 || list.Presentations[0] != p {
		t.Errorf("list: %+v", list)
	}
	var got presentation
	f.must(t, 200, "PUT", p.Href, map[string]any{"company_name": "Analytical Engines"}, &got)
	if got.CompanyName != "Analytical Engines" || got.Title != "Go" {
		t.Errorf("updated: %+v", got)
	}
	f.must(t, 200, "PUT", p.Href+"approval/", nil, &got)
	if got.Status != "APPROVED" {
		t.Errorf("after approval: %s", got.Status)
	}
	f.must(t, 200, "PUT", p.Href+"approval", nil, &got) // idempotent
	// The original let a decision be set again: approve, reject, and back.
	f.must(t, 200, "PUT", p.Href+"rejection/", nil, &got)
	if got.Status != "REJECTED" {
		t.Errorf("rejected after approval: %s", got.Status)
	}
	f.must(t, 200, "PUT", p.Href+"approval/", nil, &got)
	if got.Status != "APPROVED" {
		t.Errorf("approved after rejection: %s", got.Status)
	}

	var second presentation
	f.must(t, 201, "POST", c.Href+"presentations/", body, &second)
	f.must(t, 200, "PUT", second.Href+"rejection/", nil, &got)
	if got.Status != "REJECTED" {
		t.Errorf("after rejection: %s", got.Status)
	}
	// max_presentations is 2.
	before := f.snapshot(t)
	checkProblem(t, f.do(t, "POST", c.Href+"presentations/", body), 409)
	if diff := cmp.Diff(before, f.snapshot(t)); diff != "" {
		t.Errorf("a refused presentation changed the database:\n%s", diff)
	}
	f.must(t, 200, "DELETE", second.Href, nil, nil)
	checkProblem(t, f.do(t, "GET", second.Href, nil), 404)
	checkProblem(t, f.do(t, "GET", "/api/conferences/999999/presentations/", nil), 404)
}

func TestRoutingErrors(t *testing.T) {
	t.Parallel()
	f := setup(t)
	checkProblem(t, f.do(t, "GET", "/api/nothing-here/", nil), 404)
	r := f.do(t, "PATCH", "/api/conferences/1/", nil)
	checkProblem(t, r, 405)
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "PUT") {
		t.Errorf("Allow: %q", allow)
	}
	checkProblem(t, f.do(t, "POST", "/api/states/", "{}"), 405)
	for _, path := range []string{"/api/conferences/abc/", "/api/conferences/0/", "/api/conferences/-1/", "/api/conferences/99999999999999999999/", "/api/locations/1.5/", "/api/presentations/%00/"} {
		checkProblem(t, f.do(t, "GET", path, nil), 404)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.must(t, 200, "GET", "/healthz", nil, nil)
	f.must(t, 200, "GET", "/readyz", nil, nil)
	f.must(t, 200, "GET", "/api/states/", nil, nil)
	r := f.must(t, 200, "GET", "/metrics", nil, nil)
	for _, want := range []string{
		`http_requests_total{method="GET",route="/api/states",status="200"} 1`,
		`http_response_body_bytes_total{method="GET",route="/api/states"}`,
		"http_request_duration_seconds_bucket",
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestReadyzWithoutDatabase(t *testing.T) {
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
}

func TestCORS(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.do(t, "OPTIONS", "/api/conferences/", nil,
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
	r = f.do(t, "OPTIONS", "/api/conferences/", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("foreign origin allowed: %q", got)
	}
}

// doRaw sends body with the given Content-Type ("" sends none).
func (f fixture) doRaw(tb testing.TB, method, path, body, contentType string) response {
	tb.Helper()
	if len(body) > server.BodyLimit {
		return f.doOversized(tb, method, path, len(body), contentType)
	}
	req, err := http.NewRequest(method, f.base+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return checkAPI(tb, req, response{status: resp.StatusCode, header: resp.Header, body: data})
}

// doOversized announces a body of size bytes and sends only the headers: the server must
// refuse it from Content-Length alone. (Sending the body too would race the server's close
// against the client's write, and the client could see a reset instead of the 413.)
func (f fixture) doOversized(tb testing.TB, method, path string, size int, contentType string) response {
	tb.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.base, "http://"))
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		tb.Fatal(err)
	}
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n", method, path, size)
	if contentType != "" {
		head += "Content-Type: " + contentType + "\r\n"
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

// Label values must not alias fiber's reused buffers: under concurrent requests of several
// methods that used to corrupt them ("PUTTTE") and make /metrics fail.
func TestMetricsSurviveConcurrentRequests(t *testing.T) {
	t.Parallel()
	f := setup(t)
	loc := f.mustLocation(t)
	c := f.mustConference(t, loc.ID, "GopherCon")
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			switch i % 4 {
			case 0:
				f.do(t, "GET", c.Href, nil)
			case 1:
				f.do(t, "PUT", c.Href, map[string]any{"max_attendees": i})
			case 2:
				f.do(t, "DELETE", "/api/presentations/999999/", nil)
			default:
				f.do(t, "POST", "/api/locations/", "{}")
			}
		})
	}
	wg.Wait()
	r := f.must(t, 200, "GET", "/metrics", nil, nil)
	for _, line := range strings.Split(string(r.body), "\n") {
		if !strings.HasPrefix(line, "http_requests_total{") {
			continue
		}
		method := strings.SplitN(strings.SplitN(line, `method="`, 2)[1], `"`, 2)[0]
		if !slices.Contains([]string{"GET", "POST", "PUT", "DELETE"}, method) {
			t.Errorf("corrupt method label in %q", line)
		}
	}
}

// A connection the server terminated (a Postgres restart, an administrator) fails the request
// that meets it with 503 and Retry-After, not 500; the next request gets a fresh connection.
func TestTerminatedConnectionIs503(t *testing.T) {
	t.Parallel()
	f := setup(t)
	loc := f.mustLocation(t)
	f.db.SetMaxOpenConns(1) // one connection, so the test knows which one to kill
	var pid int
	if err := f.db.QueryRowContext(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("pgx", pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var killed bool
	if err := admin.QueryRowContext(context.Background(), "SELECT pg_terminate_backend($1)", pid).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminate backend %d: %v %v", pid, killed, err)
	}
	r := f.do(t, "GET", loc.Href, nil)
	checkProblem(t, r, 503)
	if got := r.header.Get("Retry-After"); got == "" {
		t.Error("503 without Retry-After")
	}
	f.must(t, 200, "GET", loc.Href, nil, nil)
}

// checkAPI fails the test unless the answer r to req is one the document describes (see
// edgetest.Contract.Check). It returns r, so that a request helper can wrap its answer in it.
func checkAPI(tb testing.TB, req *http.Request, r response) response {
	tb.Helper()
	edgetest.ContractOf(tb, "openapi.json").Check(tb, req, edgetest.Answer{Status: r.status, Header: r.header, Body: r.body})
	return r
}
