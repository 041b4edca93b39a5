package httpedge_test

import (
	"bytes"
	"strings"
	"testing"

	"conferencego/httpedge"
)

// A small document with what the page must show: a tag, an operation with a shared
// parameter by reference, a secured body, a response by reference and a schema.
const testDoc = `{
  "openapi": "3.1.0",
  "info": {"title": "edge-test", "version": "1.2.3", "summary": "Things.", "description": "Keeps ` + "`things`" + `.\n\nSecond <paragraph>."},
  "tags": [{"name": "things", "description": "What there is."}],
  "paths": {
    "/things/{id}": {
      "parameters": [{"$ref": "#/components/parameters/ID"}],
      "get": {"tags": ["things"], "summary": "Read a thing",
        "responses": {"200": {"description": "The thing", "headers": {"ETag": {"schema": {"type": "string"}}},
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
          "404": {"$ref": "#/components/responses/NotFound"}}},
      "put": {"tags": ["things"], "summary": "Replace a thing", "security": [{"token": []}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
        "responses": {"200": {"description": "Replaced"}}}
    },
    "/healthz": {"get": {"summary": "Up", "responses": {"200": {"description": "ok"}}}}
  },
  "components": {
    "parameters": {"ID": {"name": "id", "in": "path", "required": true, "description": "The thing's id.", "schema": {"type": "integer"}}},
    "responses": {"NotFound": {"description": "No such thing", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}},
    "schemas": {
      "Thing": {"type": "object", "properties": {"id": {"type": "integer"}, "owner": {"$ref": "#/components/schemas/Problem/properties/title"}}},
      "Problem": {"type": "object", "properties": {"title": {"type": "string"}}}
    },
    "securitySchemes": {"token": {"type": "http", "scheme": "bearer", "description": "a token"}}
  }
}`

func TestOpenAPIServesTheDocumentAsIs(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t)
	app.Get("/openapi.json", httpedge.OpenAPI([]byte(testDoc)))
	r := send(t, app, "GET", "/openapi.json", "")
	if r.status != 200 || !bytes.Equal(r.body, []byte(testDoc)) {
		t.Errorf("status %d, body %.200s: want 200 and the document", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
}

func TestDocsRendersTheDocument(t *testing.T) {
	t.Parallel()
	app, _ := newApp(t)
	app.Get("/docs", httpedge.Docs([]byte(testDoc)))
	r := send(t, app, "GET", "/docs", "")
	if r.status != 200 {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q, want text/html", ct)
	}
	page := string(r.body)
	for _, want := range []string{
		"<h1>edge-test <small>API version 1.2.3</small></h1>",
		"<p>Keeps <code>things</code>.</p><p>Second &lt;paragraph&gt;.</p>",
		`<h2 id="tag-things">things</h2>`,
		`<h2 id="tag-other">other</h2>`, // an operation without a tag
		`<h3 id="get-things-id"><span class="m GET">GET</span> /things/{id}</h3>`,
		"<td><code>id</code> (required)</td><td>path</td><td><p>The thing&#39;s id.</p></td>",
		"Requires the <code>Authorization</code> header: bearer http (a token).",
		"Request body (required), <code>application/json</code>:</p><a href=\"#schema-Thing\">Thing</a>",
		"<td>404</td><td><p>No such thing</p></td>",
		"Header <code>ETag</code>",
		`<h3 id="schema-Problem">Problem</h3>`,
		`<a href="#schema-Problem">Problem/properties/title</a>`, // a reference into a schema links to the schema
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/docs lacks %q", want)
		}
	}
	// GET comes before PUT, whatever order the document has.
	if strings.Index(page, `id="get-things-id"`) > strings.Index(page, `id="put-things-id"`) {
		t.Error("PUT /things/{id} is listed before GET")
	}
}

// A document the page cannot be drawn from must not give a blank or partial page.
func TestDocsRefusesABrokenDocument(t *testing.T) {
	t.Parallel()
	for name, doc := range map[string]string{
		"not JSON":              `{"openapi": `,
		"a missing parameter":   `{"paths": {"/x": {"get": {"parameters": [{"$ref": "#/components/parameters/Nope"}]}}}}`,
		"a missing response":    `{"paths": {"/x": {"get": {"responses": {"404": {"$ref": "#/components/responses/Nope"}}}}}}`,
		"an operation not JSON": `{"paths": {"/x": {"get": []}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			app, _ := newApp(t)
			app.Get("/docs", httpedge.Docs([]byte(doc)))
			problemOf(t, send(t, app, "GET", "/docs", ""), 500)
		})
	}
}
