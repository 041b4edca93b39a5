package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"

	"conferencego/api-conference/internal/postgres"
	"conferencego/api-conference/internal/server"
)

// The document the server embeds, read from the same file.
const openAPIFile = "openapi.json"

// apiContract is the document, loaded once: a validator for the exchanges, and the path
// templates to tell an unknown path (which must answer 404) from an unknown method (405).
type apiContract struct {
	v     validator.Validator
	mu    sync.Mutex // the validator's caches are not documented as safe for concurrent use
	paths []apiPath
}

type apiPath struct {
	template string // as in the document, e.g. /api/conferences/{id}/
	re       *regexp.Regexp
	params   int
	methods  []string // upper case
}

var contract = sync.OnceValues(func() (*apiContract, error) {
	spec, err := os.ReadFile(openAPIFile)
	if err != nil {
		return nil, err
	}
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		return nil, err
	}
	v, errs := validator.NewValidator(doc, config.WithFormatAssertions())
	if len(errs) > 0 {
		return nil, errs[0]
	}
	var raw struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(spec, &raw); err != nil {
		return nil, err
	}
	c := &apiContract{v: v}
	for tmpl, item := range raw.Paths {
		p := apiPath{template: tmpl, params: strings.Count(tmpl, "{")}
		expr := regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(regexp.QuoteMeta(strings.TrimSuffix(tmpl, "/")), `[^/]+`)
		p.re = regexp.MustCompile("^" + expr + "/?$")
		for m := range item {
			if m != "parameters" && m != "summary" && m != "description" {
				p.methods = append(p.methods, strings.ToUpper(m))
			}
		}
		c.paths = append(c.paths, p)
	}
	// A literal segment wins over a parameter, as the routes register them.
	slices.SortFunc(c.paths, func(a, b apiPath) int { return a.params - b.params })
	return c, nil
})

func (c *apiContract) match(path string) *apiPath {
	for i := range c.paths {
		if c.paths[i].re.MatchString(path) {
			return &c.paths[i]
		}
	}
	return nil
}

// checkAPI fails the test unless the answer r to req is one the document describes: a
// documented status, content type and body (and headers) for the operation, a problem+json
// 404 for a path it does not list and a 405 with Allow for a method it does not list. A
// request that the document calls invalid may be answered with any documented 4xx, but must
// not succeed. It returns r, so that a helper can wrap its answer in it.
func checkAPI(tb testing.TB, req *http.Request, r response) response {
	tb.Helper()
	c, err := contract()
	if err != nil {
		tb.Fatalf("load %s: %v", openAPIFile, err)
	}
	// CORS preflights are answered on every path by the middleware; the document says so once.
	if req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" {
		return r
	}
	where := req.Method + " " + req.URL.RequestURI()
	p := c.match(req.URL.EscapedPath())
	if p == nil {
		if r.status != http.StatusNotFound {
			tb.Errorf("%s: the document lists no such path, so it must answer 404, not %d", where, r.status)
		}
		checkProblemShape(tb, where, r)
		return r
	}
	if !slices.Contains(p.methods, req.Method) {
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") == "" {
			tb.Errorf("%s: the document lists no %s for %s, so it must answer 405 with Allow, not %d (Allow %q)",
				where, req.Method, p.template, r.status, r.header.Get("Allow"))
		}
		checkProblemShape(tb, where, r)
		return r
	}

	// Validate against the path as the document spells it (both spellings are served).
	vreq := req.Clone(req.Context())
	u := *req.URL
	u.Path, u.RawPath = strings.TrimSuffix(u.Path, "/"), ""
	if strings.HasSuffix(p.template, "/") {
		u.Path += "/"
	}
	vreq.URL = &u
	vreq.Body = http.NoBody
	var body []byte
	if req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			body, _ = io.ReadAll(rc)
			rc.Close()
		}
	}
	resp := &http.Response{
		StatusCode: r.status, Header: r.header, Body: io.NopCloser(bytes.NewReader(r.body)),
		Request: vreq, ContentLength: int64(len(r.body)),
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if ok, errs := c.v.ValidateHttpResponse(vreq, resp); !ok {
		tb.Errorf("%s answered %d, which %s does not allow:%s\nbody: %.500s", where, r.status, openAPIFile, describe(errs), r.body)
	}
	if r.status < 300 {
		vreq.Body = io.NopCloser(bytes.NewReader(body))
		if ok, errs := c.v.ValidateHttpRequest(vreq); !ok {
			tb.Errorf("%s succeeded with %d, but %s calls the request invalid:%s\nrequest body: %.500s", where, r.status, openAPIFile, describe(errs), body)
		}
	}
	return r
}

func checkProblemShape(tb testing.TB, where string, r response) {
	tb.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		tb.Errorf("%s: Content-Type %q, want application/problem+json", where, ct)
	}
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil || p.Type == "" || p.Title == "" || p.Status != r.status {
		tb.Errorf("%s: not a problem body: %s", where, r.body)
	}
}

func describe(errs []*verrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("\n  " + e.Message)
		if e.Reason != "" && e.Reason != e.Message {
			b.WriteString(": " + e.Reason)
		}
		for _, s := range e.SchemaValidationErrors {
			b.WriteString("\n    " + s.FieldPath + ": " + s.Reason)
		}
	}
	return b.String()
}

// checkAPIRaw is checkAPI for a request sent by hand over a connection.
func checkAPIRaw(tb testing.TB, base, method, path string, r response) response {
	tb.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return checkAPI(tb, req, r)
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	t.Parallel()
	c, err := contract()
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	ok, errs := c.v.ValidateDocument()
	c.mu.Unlock()
	if !ok {
		t.Errorf("%s is not a valid OpenAPI 3.1 document:%s", openAPIFile, describe(errs))
	}
}

// TestRoutesMatchDocument: every route the app registers is in the document, and every
// operation in the document is a route. Fiber adds HEAD to each GET by itself; the document
// describes the GET.
func TestRoutesMatchDocument(t *testing.T) {
	t.Parallel()
	app := server.New(slog.New(slog.NewTextHandler(io.Discard, nil)), postgres.NewStore(nil), server.Options{})
	c, err := contract()
	if err != nil {
		t.Fatal(err)
	}
	normal := func(path string) string {
		path = regexp.MustCompile(`:(\w+)`).ReplaceAllString(path, "{$1}")
		return strings.TrimSuffix(path, "/")
	}
	var routes, documented []string
	for _, r := range app.GetRoutes(true) {
		if r.Method == http.MethodHead {
			continue
		}
		routes = append(routes, r.Method+" "+normal(r.Path))
	}
	for _, p := range c.paths {
		for _, m := range p.methods {
			documented = append(documented, m+" "+normal(p.template))
		}
	}
	slices.Sort(routes)
	slices.Sort(documented)
	routes, documented = slices.Compact(routes), slices.Compact(documented)
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in %s", r, openAPIFile)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routes, d) {
			t.Errorf("%s documents %s, which is not a route", openAPIFile, d)
		}
	}
}

func TestOpenAPIAndDocsAreServed(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.must(t, 200, "GET", "/openapi.json", nil, nil)
	spec, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.body, spec) {
		t.Error("/openapi.json is not the embedded document")
	}
	r = f.must(t, 200, "GET", "/docs", nil, nil)
	page := string(r.body)
	for _, want := range []string{"<h1>api-conference", "/api/conferences/{id}/presentations/", "/api/conferences/changes/", "application/problem+json", `id="schema-Problem"`} {
		if !strings.Contains(page, want) {
			t.Errorf("/docs lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", `src="http`, `href="http`, "@import"} {
		if strings.Contains(page, banned) {
			t.Errorf("/docs has %q: the page must load nothing from the network", banned)
		}
	}
}

// recorder stands in for a test, to see what checkAPI would report.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, a ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, a...))
}
func (r *recorder) Fatalf(format string, a ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, a...))
}

// TestCheckAPIRefusesUndocumentedAnswers: the check is not a formality.
func TestCheckAPIRefusesUndocumentedAnswers(t *testing.T) {
	t.Parallel()
	problem := func(status int) response {
		return response{status: status, header: http.Header{"Content-Type": {"application/problem+json"}},
			body: fmt.Appendf(nil, `{"type":"about:blank","title":"x","status":%d}`, status)}
	}
	jsonBody := func(status int, body string) response {
		return response{status: status, header: http.Header{"Content-Type": {"application/json"}}, body: []byte(body)}
	}
	for _, tc := range []struct {
		name, method, path string
		r                  response
	}{
		{"a body missing required fields", "GET", "/api/locations/1/", jsonBody(200, `{"id": 1}`)},
		{"an undocumented status", "GET", "/api/locations/1/", problem(418)},
		{"a 409 where none is documented", "GET", "/api/states", problem(409)},
		{"an error that is not problem+json", "GET", "/api/locations/1/", jsonBody(404, `{"error": "no"}`)},
		{"an unknown path that does not answer 404", "GET", "/api/nothing/", jsonBody(200, `{}`)},
		{"an unknown method that does not answer 405", "PATCH", "/api/locations/1/", problem(404)},
		{"a time that is not RFC 3339", "GET", "/api/conferences/changes/", jsonBody(200,
			`{"source":"s","next":"1","more":false,"changes":[{"event_id":"e","type":"conference.deleted","conference_id":1,"version":2,"occurred_at":"yesterday","data":null}]}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tc.method, "http://test"+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{TB: t}
			checkAPI(rec, req, tc.r)
			if len(rec.errs) == 0 {
				t.Errorf("checkAPI let %s %s answer %d %s through", tc.method, tc.path, tc.r.status, tc.r.body)
			}
		})
	}
}
