package edgetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"
)

// Contract is a service's OpenAPI document, loaded for its tests: a validator for the
// exchanges, and the path templates to tell an unknown path (which must answer 404) from an
// unknown method (405).
type Contract struct {
	file  string
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

var contracts sync.Map // file → *Contract

// ContractOf is the document in file, loaded once per test binary; a document that does not
// load fails tb.
func ContractOf(tb testing.TB, file string) *Contract {
	tb.Helper()
	if c, ok := contracts.Load(file); ok {
		return c.(*Contract)
	}
	c, err := LoadContract(file)
	if err != nil {
		tb.Fatalf("load %s: %v", file, err)
	}
	got, _ := contracts.LoadOrStore(file, c)
	return got.(*Contract)
}

// LoadContract reads the document in file.
func LoadContract(file string) (*Contract, error) {
	spec, err := os.ReadFile(file)
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
	c := &Contract{file: file, v: v}
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
}

func (c *Contract) match(path string) *apiPath {
	for i := range c.paths {
		if c.paths[i].re.MatchString(path) {
			return &c.paths[i]
		}
	}
	return nil
}

// Request is a request without a body, for checking an answer to one sent by hand.
func Request(tb testing.TB, method, url string) *http.Request {
	tb.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

// Answer is a response as a test saw it.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// Check fails the test unless the answer r to req is one the document describes: a
// documented status, content type and body (and headers) for the operation, a problem+json
// 404 for a path it does not list and a 405 with Allow for a method it does not list. A
// request that the document calls invalid may be answered with any documented 4xx, but must
// not succeed.
func (c *Contract) Check(tb testing.TB, req *http.Request, r Answer) {
	tb.Helper()
	openAPIFile := c.file
	// CORS preflights are answered on every path by the middleware; the document says so once.
	if req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" {
		return
	}
	where := req.Method + " " + req.URL.RequestURI()
	p := c.match(req.URL.EscapedPath())
	if p == nil {
		if r.Status != http.StatusNotFound {
			tb.Errorf("%s: the document lists no such path, so it must answer 404, not %d", where, r.Status)
		}
		checkProblemShape(tb, where, r)
		return
	}
	if !slices.Contains(p.methods, req.Method) {
		if r.Status != http.StatusMethodNotAllowed || r.Header.Get("Allow") == "" {
			tb.Errorf("%s: the document lists no %s for %s, so it must answer 405 with Allow, not %d (Allow %q)",
				where, req.Method, p.template, r.Status, r.Header.Get("Allow"))
		}
		checkProblemShape(tb, where, r)
		return
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
		StatusCode: r.Status, Header: r.Header, Body: io.NopCloser(bytes.NewReader(r.Body)),
		Request: vreq, ContentLength: int64(len(r.Body)),
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if ok, errs := c.v.ValidateHttpResponse(vreq, resp); !ok {
		tb.Errorf("%s answered %d, which %s does not allow:%s\nbody: %.500s", where, r.Status, openAPIFile, describe(errs), r.Body)
	}
	if r.Status < 300 {
		vreq.Body = io.NopCloser(bytes.NewReader(body))
		if ok, errs := c.v.ValidateHttpRequest(vreq); !ok {
			tb.Errorf("%s succeeded with %d, but %s calls the request invalid:%s\nrequest body: %.500s", where, r.Status, openAPIFile, describe(errs), body)
		}
	}
}

func checkProblemShape(tb testing.TB, where string, r Answer) {
	tb.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		tb.Errorf("%s: Content-Type %q, want application/problem+json", where, ct)
	}
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(r.Body, &p); err != nil || p.Type == "" || p.Title == "" || p.Status != r.Status {
		tb.Errorf("%s: not a problem body: %s", where, r.Body)
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

// CheckDocument fails t unless the document is valid OpenAPI 3.1.
func (c *Contract) CheckDocument(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	ok, errs := c.v.ValidateDocument()
	c.mu.Unlock()
	if !ok {
		t.Errorf("%s is not a valid OpenAPI 3.1 document:%s", c.file, describe(errs))
	}
}

// CheckRoutes fails t unless every route app registers is in the document and every operation
// in the document is a route. Fiber adds HEAD to each GET by itself; the document describes the
// GET.
func (c *Contract) CheckRoutes(t *testing.T, app *fiber.App) {
	t.Helper()
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
			t.Errorf("route %s is not in %s", r, c.file)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routes, d) {
			t.Errorf("%s documents %s, which is not a route", c.file, d)
		}
	}
}

// CheckServed fails t unless the server at base serves the document byte for byte at
// /openapi.json, and a /docs page that holds each of want and loads nothing from the network.
func (c *Contract) CheckServed(t *testing.T, base string, want ...string) {
	t.Helper()
	get := func(path string) []byte {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		return body
	}
	spec, page := get("/openapi.json"), get("/docs")
	file, err := os.ReadFile(c.file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(spec, file) {
		t.Error("/openapi.json is not the embedded document")
	}
	for _, w := range want {
		if !bytes.Contains(page, []byte(w)) {
			t.Errorf("/docs lacks %q", w)
		}
	}
	for _, banned := range []string{"<script", `src="http`, `href="http`, "@import"} {
		if bytes.Contains(page, []byte(banned)) {
			t.Errorf("/docs has %q: the page must load nothing from the network", banned)
		}
	}
}

// Service is what CheckService needs of a service: its document, its app, where it serves,
// what its /docs page must show, and answers its document must refuse.
type Service struct {
	Document string
	App      *fiber.App
	Base     string
	DocsShow []string
	Refusals []Refusal
}

// CheckService holds a service to its document: the document is valid, every route is in it
// and back, it and its page are served, and the check refuses answers it does not allow.
func CheckService(t *testing.T, s Service) {
	t.Helper()
	c := ContractOf(t, s.Document)
	t.Run("document", func(t *testing.T) { c.CheckDocument(t) })
	t.Run("routes", func(t *testing.T) { c.CheckRoutes(t, s.App) })
	t.Run("served", func(t *testing.T) { c.CheckServed(t, s.Base, s.DocsShow...) })
	t.Run("refusals", func(t *testing.T) { c.CheckRefuses(t, s.Refusals) })
}

// Refusal is an answer the document does not allow, for CheckRefuses.
type Refusal struct {
	Name, Method, Path string
	Answer             Answer
}

// Problem is a problem+json answer of status.
func Problem(status int) Answer {
	return Answer{Status: status, Header: http.Header{"Content-Type": {"application/problem+json"}},
		Body: fmt.Appendf(nil, `{"type":"about:blank","title":"x","status":%d}`, status)}
}

// JSON is a JSON answer of status with body.
func JSON(status int, body string) Answer {
	return Answer{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
}

// CheckRefuses fails t unless Check reports each of cases: the check is not a formality.
func (c *Contract) CheckRefuses(t *testing.T, cases []Refusal) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tc.Method, "http://test"+tc.Path, nil)
			if err != nil {
				t.Fatal(err)
			}
			rec := &recorder{TB: t}
			c.Check(rec, req, tc.Answer)
			if len(rec.errs) == 0 {
				t.Errorf("the check let %s %s answer %d %s through", tc.Method, tc.Path, tc.Answer.Status, tc.Answer.Body)
			}
		})
	}
}

// recorder stands in for a test, to see what Check would report.
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
