package main

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestFiguresMathInTheBrowser runs the page's own modules in chromium: the lag quantiles from
// histogram buckets (as Prometheus' histogram_quantile), the difference of two readings, and
// how a lag reads. It needs no stack: the page's modules are imported from the web handler.
func TestFiguresMathInTheBrowser(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(env(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), cfg))
	defer srv.Close()
	p := newPage(t)
	// A document of the handler's origin that runs no script of its own.
	p.do("open a document of the page's origin", chromedpNavigate(srv.URL+"/vendor/uplot/LICENSE"))
	for _, tc := range []struct{ name, expr, want string }{
		{"median in the first bucket", `m.quantile(0.5, [{le: 0.01, count: 1}, {le: 0.1, count: 2}], 2)`, "0.01"},
		{"p99 interpolated in the second", `m.quantile(0.99, [{le: 0.01, count: 1}, {le: 0.1, count: 2}], 2).toFixed(4)`, "0.0982"},
		{"no observations", `m.quantile(0.5, [{le: 1, count: 0}], 0)`, "null"},
		{"beyond the highest bound", `m.quantile(0.99, [{le: 0.01, count: 1}, {le: 0.1, count: 2}], 3)`, "0.1"},
		{"the difference of two readings", `JSON.stringify(m.delta({count: 5, sum: 2, buckets: [{le: 1, count: 4}]}, {count: 2, sum: 1, buckets: [{le: 1, count: 2}]}))`,
			`{"count":3,"sum":1,"buckets":[{"le":1,"count":2}]}`},
		{"a lag in milliseconds", `c.formatLag(0.0024)`, "2.4 ms"},
		{"a lag in seconds", `c.formatLag(1.5)`, "1.50 s"},
		{"no lag", `c.formatLag(null)`, "—"},
	} {
		js := `Promise.all([import("/js/figures.js"), import("/js/copy.js")]).then(([m, c]) => String(` + tc.expr + `))`
		got := get(p, tc.name, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		if got != tc.want {
			t.Errorf("%s: %s = %s, want %s", tc.name, tc.expr, got, tc.want)
		}
	}
	p.checkClean()
}
