package httpedge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"
)

// OpenAPI serves a service's OpenAPI document, doc, as it is. The services embed the file
// that their tests check every answer and route against, so it cannot drift from the handlers.
func OpenAPI(doc []byte) fiber.Handler {
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		c.Set(fiber.HeaderCacheControl, "no-cache")
		return c.Send(doc)
	}
}

// Docs serves doc as a page a person can read. It is rendered here from the document, with
// nothing loaded from the network, so it works offline and behind any firewall. The page is
// rendered on the first request and kept: most servers (every test's) never serve it. A
// document the page cannot be rendered from answers 500 (a problem, through the app's error
// handler), which each service's test of /docs catches.
func Docs(doc []byte) fiber.Handler {
	page := sync.OnceValues(func() ([]byte, error) { return renderDocs(doc) })
	return func(c *fiber.Ctx) error {
		p, err := page()
		if err != nil {
			return fmt.Errorf("render /docs: %w", err)
		}
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		return c.Send(p)
	}
}

// The parts of an OpenAPI document that the page shows.
type (
	apiDoc struct {
		Info struct {
			Title, Version, Summary, Description string
		}
		Tags       []struct{ Name, Description string }
		Paths      map[string]map[string]json.RawMessage
		Components struct {
			Parameters      map[string]apiParam
			Responses       map[string]apiResponse
			Schemas         map[string]json.RawMessage
			SecuritySchemes map[string]struct{ Type, Scheme, Description string } `json:"securitySchemes"`
		}
	}
	apiOperation struct {
		Tags        []string
		Summary     string
		Description string
		Security    []map[string][]string
		Parameters  []apiParam
		RequestBody *struct {
			Required bool
			Content  map[string]struct{ Schema json.RawMessage }
		} `json:"requestBody"`
		Responses map[string]apiResponse
	}
	apiParam struct {
		Ref         string `json:"$ref"`
		Name, In    string
		Required    bool
		Description string
		Schema      json.RawMessage
	}
	apiResponse struct {
		Ref         string `json:"$ref"`
		Description string
		Headers     map[string]json.RawMessage
		Content     map[string]struct{ Schema json.RawMessage }
	}
)

// The page's view of the document.
type (
	docsView struct {
		Title, Version, Summary string
		Description             template.HTML
		Groups                  []docsGroup
		Schemas                 []docsSchema
	}
	docsGroup struct {
		Name        string
		Description template.HTML
		Operations  []docsOperation
	}
	docsOperation struct {
		ID, Method, Path, Summary string
		Description               template.HTML
		Security                  []string
		Parameters                []docsParam
		Body                      []docsContent
		BodyRequired              bool
		Responses                 []docsResponse
	}
	docsParam struct {
		Name, In    string
		Required    bool
		Description template.HTML
		Schema      template.HTML
	}
	docsContent struct {
		Type   string
		Schema template.HTML
	}
	docsResponse struct {
		Status      string
		Description template.HTML
		Headers     []string
		Content     []docsContent
	}
	docsSchema struct {
		Name string
		JSON template.HTML
	}
)

var methodOrder = []string{"get", "head", "post", "put", "patch", "delete", "options"}

// renderDocs renders the page that Docs serves from an OpenAPI 3.1 document in JSON.
func renderDocs(doc []byte) ([]byte, error) {
	var d apiDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("read the OpenAPI document: %w", err)
	}
	v := docsView{Title: d.Info.Title, Version: d.Info.Version, Summary: d.Info.Summary, Description: prose(d.Info.Description)}
	groups := map[string]*docsGroup{}
	var order []string
	for _, t := range d.Tags {
		groups[t.Name] = &docsGroup{Name: t.Name, Description: prose(t.Description)}
		order = append(order, t.Name)
	}
	for _, path := range slices.Sorted(maps.Keys(d.Paths)) {
		item := d.Paths[path]
		var shared []apiParam
		if raw, ok := item["parameters"]; ok {
			if err := json.Unmarshal(raw, &shared); err != nil {
				return nil, fmt.Errorf("%s: parameters: %w", path, err)
			}
		}
		for _, method := range methodOrder {
			raw, ok := item[method]
			if !ok {
				continue
			}
			var op apiOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				return nil, fmt.Errorf("%s %s: %w", method, path, err)
			}
			o, err := d.operation(method, path, append(slices.Clone(shared), op.Parameters...), op)
			if err != nil {
				return nil, err
			}
			tag := "other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			if groups[tag] == nil {
				groups[tag] = &docsGroup{Name: tag}
				order = append(order, tag)
			}
			groups[tag].Operations = append(groups[tag].Operations, o)
		}
	}
	for _, name := range order {
		if len(groups[name].Operations) > 0 {
			v.Groups = append(v.Groups, *groups[name])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(d.Components.Schemas)) {
		v.Schemas = append(v.Schemas, docsSchema{Name: name, JSON: schemaHTML(d.Components.Schemas[name], true)})
	}
	var out bytes.Buffer
	if err := docsTemplate.Execute(&out, v); err != nil {
		return nil, fmt.Errorf("render the reference page: %w", err)
	}
	return out.Bytes(), nil
}

func (d apiDoc) operation(method, path string, params []apiParam, op apiOperation) (docsOperation, error) {
	o := docsOperation{
		ID:     strings.ToLower(method) + strings.NewReplacer("/", "-", "{", "", "}", "", ".", "-").Replace(path),
		Method: strings.ToUpper(method), Path: path, Summary: op.Summary, Description: prose(op.Description),
	}
	for _, req := range op.Security {
		for name := range req {
			s := d.Components.SecuritySchemes[name]
			o.Security = append(o.Security, fmt.Sprintf("%s %s (%s)", s.Scheme, s.Type, s.Description))
		}
	}
	for _, p := range params {
		if p.Ref != "" {
			name := strings.TrimPrefix(p.Ref, "#/components/parameters/")
			found, ok := d.Components.Parameters[name]
			if !ok {
				return o, fmt.Errorf("%s %s: no parameter %s", method, path, p.Ref)
			}
			p = found
		}
		o.Parameters = append(o.Parameters, docsParam{Name: p.Name, In: p.In, Required: p.Required, Description: prose(p.Description), Schema: schemaHTML(p.Schema, false)})
	}
	if rb := op.RequestBody; rb != nil {
		o.BodyRequired = rb.Required
		for _, ct := range slices.Sorted(maps.Keys(rb.Content)) {
			o.Body = append(o.Body, docsContent{Type: ct, Schema: schemaHTML(rb.Content[ct].Schema, false)})
		}
	}
	for _, code := range slices.Sorted(maps.Keys(op.Responses)) {
		r := op.Responses[code]
		if r.Ref != "" {
			name := strings.TrimPrefix(r.Ref, "#/components/responses/")
			found, ok := d.Components.Responses[name]
			if !ok {
				return o, fmt.Errorf("%s %s: no response %s", method, path, r.Ref)
			}
			r = found
		}
		dr := docsResponse{Status: code, Description: prose(r.Description), Headers: slices.Sorted(maps.Keys(r.Headers))}
		for _, ct := range slices.Sorted(maps.Keys(r.Content)) {
			dr.Content = append(dr.Content, docsContent{Type: ct, Schema: schemaHTML(r.Content[ct].Schema, false)})
		}
		o.Responses = append(o.Responses, dr)
	}
	return o, nil
}

// schemaHTML shows a schema: a link for a bare reference, else its JSON with every
// reference a link. Top-level schemas are always shown whole.
func schemaHTML(raw json.RawMessage, whole bool) template.HTML {
	if len(raw) == 0 {
		return ""
	}
	var ref struct {
		Ref string `json:"$ref"`
	}
	if !whole && json.Unmarshal(raw, &ref) == nil && strings.HasPrefix(ref.Ref, "#/components/schemas/") && !strings.Contains(strings.TrimPrefix(ref.Ref, "#/components/schemas/"), "/") {
		var fields map[string]json.RawMessage
		if json.Unmarshal(raw, &fields) == nil && len(fields) == 1 {
			return schemaLink(ref.Ref)
		}
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, raw, "", "  "); err != nil {
		return template.HTML(template.HTMLEscapeString(string(raw)))
	}
	escaped := template.HTMLEscapeString(pretty.String())
	// Link each "$ref": "#/components/schemas/Name…" in the escaped text.
	const marker = `&#34;$ref&#34;: &#34;`
	var b strings.Builder
	for {
		i := strings.Index(escaped, marker)
		if i < 0 {
			b.WriteString(escaped)
			break
		}
		b.WriteString(escaped[:i+len(marker)])
		escaped = escaped[i+len(marker):]
		end := strings.Index(escaped, "&#34;")
		if end < 0 {
			continue
		}
		b.WriteString(string(schemaLink(escaped[:end])))
		escaped = escaped[end:]
	}
	return template.HTML("<pre>" + b.String() + "</pre>")
}

func schemaLink(ref string) template.HTML {
	name := strings.TrimPrefix(ref, "#/components/schemas/")
	if i := strings.IndexByte(name, '/'); i >= 0 {
		name = name[:i]
	}
	return template.HTML(`<a href="#schema-` + template.HTMLEscapeString(name) + `">` + template.HTMLEscapeString(strings.TrimPrefix(ref, "#/components/schemas/")) + `</a>`)
}

// prose renders a description: paragraphs on blank lines, `code` in backticks.
func prose(s string) template.HTML {
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, para := range strings.Split(strings.TrimSpace(s), "\n\n") {
		b.WriteString("<p>")
		for i, part := range strings.Split(para, "`") {
			part = template.HTMLEscapeString(part)
			if i%2 == 1 {
				part = "<code>" + part + "</code>"
			}
			b.WriteString(part)
		}
		b.WriteString("</p>")
	}
	return template.HTML(b.String())
}

var docsTemplate = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} API reference</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem 2rem; color: #222; }
h2 { border-bottom: 1px solid #ccc; margin-top: 2.5rem; text-transform: capitalize; }
h3 { margin: 1.8rem 0 .3rem; font-family: ui-monospace, monospace; font-size: 1rem; }
.m { display: inline-block; min-width: 4.2rem; padding: 0 .4rem; border-radius: 3px; color: #fff; background: #555; text-align: center; }
.m.GET { background: #2a7ab0; } .m.POST { background: #2f8a46; } .m.PUT { background: #b07a1a; } .m.DELETE { background: #b03a2e; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; }
pre { background: #f6f8fa; padding: .5rem; overflow-x: auto; margin: .2rem 0; font-size: 13px; }
code { background: #f0f0f0; padding: 0 .2rem; }
nav ul { columns: 2; }
p { margin: .3rem 0; }
</style>
</head>
<body>
<h1>{{.Title}} <small>API version {{.Version}}</small></h1>
<p><strong>{{.Summary}}</strong></p>
{{.Description}}
<p>The machine-readable document is <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
<nav><ul>
{{range .Groups}}{{range .Operations}}<li><a href="#{{.ID}}"><code>{{.Method}} {{.Path}}</code></a> {{.Summary}}</li>
{{end}}{{end}}</ul></nav>
{{range .Groups}}
<h2 id="tag-{{.Name}}">{{.Name}}</h2>
{{.Description}}
{{range .Operations}}
<h3 id="{{.ID}}"><span class="m {{.Method}}">{{.Method}}</span> {{.Path}}</h3>
<p><strong>{{.Summary}}</strong></p>
{{.Description}}
{{range .Security}}<p>Requires the <code>Authorization</code> header: {{.}}.</p>{{end}}
{{if .Parameters}}<table><tr><th>Parameter</th><th>In</th><th>Description</th><th>Schema</th></tr>
{{range .Parameters}}<tr><td><code>{{.Name}}</code>{{if .Required}} (required){{end}}</td><td>{{.In}}</td><td>{{.Description}}</td><td>{{.Schema}}</td></tr>
{{end}}</table>{{end}}
{{$req := .BodyRequired}}{{range .Body}}<p>Request body{{if $req}} (required){{end}}, <code>{{.Type}}</code>:</p>{{.Schema}}{{end}}
<table><tr><th>Status</th><th>Description</th><th>Body</th></tr>
{{range .Responses}}<tr><td>{{.Status}}</td><td>{{.Description}}{{range .Headers}}<br>Header <code>{{.}}</code>{{end}}</td><td>{{range .Content}}<code>{{.Type}}</code> {{.Schema}}{{end}}</td></tr>
{{end}}</table>
{{end}}
{{end}}
<h2 id="schemas">Schemas</h2>
{{range .Schemas}}<h3 id="schema-{{.Name}}">{{.Name}}</h3>{{.JSON}}
{{end}}
</body>
</html>
`))
