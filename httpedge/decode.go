package httpedge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
)

// Object is a decoded JSON object whose fields are read one by one, so that a partial update
// knows which fields were given, and every problem is reported at once with its field name.
type Object struct {
	fields map[string]json.RawMessage
	errs   FieldErrors
}

// DecodeObject reads the request body as one JSON object with no fields beyond allowed. An
// unknown field is a field error of the Object, reported with the others by Err.
func DecodeObject(c *fiber.Ctx, allowed ...string) (*Object, error) {
	body, err := jsonBody(c)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil {
		return nil, fmt.Errorf("%w: the request body is not a JSON object: %s", ErrInvalid, jsonProblem(err))
	}
	if fields == nil {
		return nil, fmt.Errorf("%w: the request body must be a JSON object, not null", ErrInvalid)
	}
	if err := checkRest(dec, body); err != nil {
		return nil, err
	}
	o := &Object{fields: fields}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if !slices.Contains(allowed, name) {
			o.Add(name, "is not a known field")
		}
	}
	return o, nil
}

// DecodeStrict reads the body as exactly one JSON object of dst's shape, no unknown fields:
// for the shapes that machines send, where a reader of each field would add nothing.
func DecodeStrict(c *fiber.Ctx, dst any) error {
	body, err := jsonBody(c)
	if err != nil {
		return err
	}
	if bytes.TrimSpace(body)[0] != '{' {
		return fmt.Errorf("%w: the request body must be a JSON object", ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("%w: the request body does not match the documented shape: %s", ErrInvalid, jsonProblem(err))
	}
	return checkRest(dec, body)
}

// jsonBody returns the body of a request that says it is JSON (else 415), is UTF-8 and holds
// more than whitespace.
func jsonBody(c *fiber.Ctx) ([]byte, error) {
	if err := RequireJSON(c); err != nil {
		return nil, err
	}
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fmt.Errorf("%w: the request body must be a JSON object", ErrInvalid)
	}
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("%w: the request body is not valid UTF-8", ErrInvalid)
	}
	return body, nil
}

// checkRest refuses what follows the value dec decoded from body, and a NUL character
// anywhere in it.
func checkRest(dec *json.Decoder, body []byte) error {
	if afterValue(dec, body) {
		return fmt.Errorf("%w: the request body has content after the JSON object", ErrInvalid)
	}
	if field, ok := nulField(body); ok {
		return invalidField(field, "must not contain NUL characters")
	}
	return nil
}

// afterValue reports whether anything but JSON whitespace follows the value dec decoded from
// body: a second value, a stray bracket, or plain text.
func afterValue(dec *json.Decoder, body []byte) bool {
	return len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) > 0
}

// nulField returns the path (name, a.b, list[2].c) of the first key or string value in the
// JSON document body that holds a NUL character. Postgres text and jsonb cannot store one, so
// it must be refused as bad input before it reaches the database, whatever the field.
func nulField(body []byte) (string, bool) {
	type level struct {
		object bool
		key    string
		index  int
		isKey  bool // the next string in this object is a key
	}
	var stack []*level
	where := func() string {
		var b strings.Builder
		for _, l := range stack {
			if l.object {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(l.key)
			} else {
				fmt.Fprintf(&b, "[%d]", l.index)
			}
		}
		if b.Len() == 0 {
			return "body"
		}
		return b.String()
	}
	valueDone := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].object {
				stack[n-1].isKey = true
			} else {
				stack[n-1].index++
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &level{object: true, isKey: true})
			case '[':
				stack = append(stack, &level{})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			isKey := len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].isKey
			if isKey {
				stack[len(stack)-1].key, stack[len(stack)-1].isKey = t, false
			}
			if strings.ContainsRune(t, 0) {
				return where(), true
			}
			if !isKey {
				valueDone()
			}
		default:
			valueDone()
		}
	}
}

// RequireJSON answers 415 unless the request says its body is JSON.
func RequireJSON(c *fiber.Ctx) error {
	ct := c.Get(fiber.HeaderContentType)
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != fiber.MIMEApplicationJSON && !strings.HasSuffix(mt, "+json")) {
		return fiber.NewError(fiber.StatusUnsupportedMediaType,
			fmt.Sprintf("send the body as application/json, not %q", ct))
	}
	return nil
}

func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("syntax error at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("expected an object, found %s", typ.Value)
	default:
		return err.Error()
	}
}

// Err returns the problems found so far, as FieldErrors, or nil.
func (o *Object) Err() error {
	if len(o.errs) == 0 {
		return nil
	}
	return o.errs
}

// Add records a problem with the field name, for the checks a service makes itself.
func (o *Object) Add(name, message string) {
	o.errs = append(o.errs, FieldError{Field: name, Message: message})
}

// Raw returns the field name as given, and whether it was.
func (o *Object) Raw(name string) (json.RawMessage, bool) {
	r, ok := o.fields[name]
	return r, ok
}

// isNull reports whether r is the JSON null.
func isNull(r json.RawMessage) bool { return string(bytes.TrimSpace(r)) == "null" }

// Str reads a string field. Null is refused unless nullable, when it means "".
func (o *Object) Str(name string, nullable bool) *string {
	r, ok := o.Raw(name)
	if !ok {
		return nil
	}
	if isNull(r) {
		if nullable {
			s := ""
			return &s
		}
		o.Add(name, "must be a string, not null")
		return nil
	}
	var s string
	if err := json.Unmarshal(r, &s); err != nil {
		o.Add(name, "must be a string")
		return nil
	}
	return &s
}

// Integer reads a whole number given as a JSON number or as a string of digits, as the
// original project's HTML forms sent them.
func (o *Object) Integer(name string) *int64 {
	r, ok := o.Raw(name)
	if !ok {
		return nil
	}
	n, ok := parseInteger(r)
	if !ok {
		o.Add(name, "must be a whole number")
		return nil
	}
	return &n
}

func parseInteger(r json.RawMessage) (int64, bool) {
	text := string(bytes.TrimSpace(r))
	if strings.HasPrefix(text, `"`) {
		// A form sends digits. "1e2", "0x10" or "+7" in a string is not what a form sends
		// and not what the API documents, so only a plain (optionally negative) decimal is read.
		if err := json.Unmarshal(r, &text); err != nil || !isDecimal(strings.TrimSpace(text)) {
			return 0, false
		}
		n, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		return n, err == nil
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		// The JSON numbers 100.0 and 1e2 are whole numbers too; 1.5 is not.
		f, ferr := strconv.ParseFloat(text, 64)
		if ferr != nil || f != float64(int64(f)) || f > 1<<53 || f < -(1<<53) {
			return 0, false
		}
		n = int64(f)
	}
	return n, true
}

// isDecimal reports whether s is an optional minus and one or more ASCII digits.
func isDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Count reads a count from 0 to limit into an int.
func (o *Object) Count(name string, limit int) *int {
	n := o.Integer(name)
	if n == nil {
		return nil
	}
	if *n < 0 || *n > int64(limit) {
		o.Add(name, fmt.Sprintf("must be between 0 and %d", limit))
		return nil
	}
	v := int(*n)
	return &v
}

// Ref reads a reference to another resource: its id as a number or a string of digits, or its
// href (prefix is the collection's path, like "/api/locations/").
func (o *Object) Ref(name, prefix string) *int64 {
	r, ok := o.Raw(name)
	if !ok {
		return nil
	}
	var s string
	if json.Unmarshal(r, &s) == nil && strings.HasPrefix(s, prefix) {
		id, ok := ParseID(strings.TrimSuffix(strings.TrimPrefix(s, prefix), "/"))
		if !ok {
			o.Add(name, "must be an id or an href like "+prefix+"7/")
			return nil
		}
		return &id
	}
	n, ok := parseInteger(r)
	if !ok || n <= 0 {
		o.Add(name, "must be the id of an existing resource (a positive whole number)")
		return nil
	}
	return &n
}

// When reads a time given as RFC 3339 or as a date (YYYY-MM-DD, meaning midnight UTC).
func (o *Object) When(name string) *time.Time {
	r, ok := o.Raw(name)
	if !ok {
		return nil
	}
	var s string
	if err := json.Unmarshal(r, &s); err != nil {
		o.Add(name, "must be a string: an RFC 3339 time or a YYYY-MM-DD date")
		return nil
	}
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			t = t.UTC()
			return &t
		}
	}
	o.Add(name, "must be an RFC 3339 time (2027-03-01T09:00:00Z) or a date (2027-03-01)")
	return nil
}

// ParseID parses a path or reference id: a positive decimal integer.
func ParseID(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// IDParam reads the :name path parameter; an id that cannot exist is simply not found.
func IDParam(c *fiber.Ctx, name, what string) (int64, error) {
	raw := c.Params(name)
	id, ok := ParseID(raw)
	if !ok {
		return 0, fmt.Errorf("%s %q: %w", what, raw, ErrNotFound)
	}
	return id, nil
}
