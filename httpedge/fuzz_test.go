package httpedge_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzDecodeObject: whatever the body, the decoder answers 200 or a 4xx problem, never a 5xx,
// and nothing it lets through holds a NUL character, which Postgres text cannot store.
func FuzzDecodeObject(f *testing.F) {
	for _, seed := range []string{
		`{"name": "A", "rooms": "12", "place": "/api/places/3/", "starts": "2027-03-01"}`,
		`{"name": "A\u0000"}`, `{"note": {"a": [1, {"\u0000": 2}]}}`, `{"name": "A"} {}`, `[]`, `null`, "",
		"{\"name\": \"\xff\"}", `{"seats": 1e400, "rooms": -0.0}`,
	} {
		f.Add(seed)
	}
	app := objectApp(f)
	f.Fuzz(func(t *testing.T, body string) {
		r := send(t, app, "POST", "/object", body, "Content-Type", "application/json")
		switch {
		case r.status == 200:
			var v any
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Fatalf("accepted a body that is not JSON: %q", body)
			}
			if holdsNUL(v) {
				t.Fatalf("accepted a NUL character: %q", body)
			}
		case r.status >= 400 && r.status < 500:
			problemOf(t, r, r.status)
		default:
			t.Fatalf("status %d for %q: %s", r.status, body, r.body)
		}
	})
}

func holdsNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, 0)
	case []any:
		for _, e := range v {
			if holdsNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range v {
			if strings.ContainsRune(k, 0) || holdsNUL(e) {
				return true
			}
		}
	}
	return false
}
