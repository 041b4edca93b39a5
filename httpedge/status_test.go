package httpedge_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"conferencego/httpedge"
)

// failing is a collector whose source is down: it reports an error and nothing else.
type failing struct{ desc *prometheus.Desc }

func (f failing) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }
func (f failing) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(f.desc, errors.New("redis is down"))
}

func statusRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	cv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "things_total", Help: "h"}, []string{"cause"})
	cv.WithLabelValues("a").Add(2)
	cv.WithLabelValues("b").Add(3)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "backlog", Help: "h"})
	g.Set(7)
	hv := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lag_seconds", Help: "h", Buckets: []float64{0.01, 0.1, 1}}, []string{"x"})
	hv.WithLabelValues("1").Observe(0.005)
	hv.WithLabelValues("2").Observe(0.05)
	hv.WithLabelValues("2").Observe(5)
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: "not_asked_total", Help: "h"})
	reg.MustRegister(cv, g, hv, other, failing{prometheus.NewDesc("stream_length", "h", nil, nil)})
	return reg
}

func TestStatusSumsSeriesAndMergesHistograms(t *testing.T) {
	t.Parallel()
	h := httpedge.Status(httpedge.StatusConfig{
		Service: "syncer", Mode: "push", Gatherer: statusRegistry(t),
		Metrics: []string{"things_total", "backlog", "lag_seconds", "stream_length", "never_registered"},
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	var got httpedge.StatusBody
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Service != "syncer" || got.Mode != "push" || got.Time.IsZero() {
		t.Errorf("service %q, mode %q, time %v", got.Service, got.Mode, got.Time)
	}
	five, seven, three, sum := 5.0, 7.0, uint64(3), 5.055
	want := map[string]httpedge.Figure{
		"things_total": {Type: "counter", Value: &five},
		"backlog":      {Type: "gauge", Value: &seven},
		"lag_seconds": {Type: "histogram", Count: &three, Sum: &sum,
			Buckets: []httpedge.Bucket{{LE: 0.01, Count: 1}, {LE: 0.1, Count: 2}, {LE: 1, Count: 2}}},
	}
	// The failed collector and the family nobody registered are left out; so is what was not asked.
	if diff := cmp.Diff(want, got.Metrics, cmp.Comparer(func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 })); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}

func TestStatusAnswersCORSWhenAsked(t *testing.T) {
	t.Parallel()
	h := httpedge.Status(httpedge.StatusConfig{Gatherer: prometheus.NewRegistry(), CORSAllowedOrigins: []string{"http://localhost:3000"}})
	for _, tc := range []struct {
		method, origin, allowed string
		status                  int
	}{
		{http.MethodGet, "http://localhost:3000", "http://localhost:3000", http.StatusOK},
		{http.MethodOptions, "http://localhost:3000", "http://localhost:3000", http.StatusNoContent},
		{http.MethodGet, "http://evil.example", "", http.StatusOK},
		{http.MethodGet, "", "", http.StatusOK},
	} {
		req := httptest.NewRequest(tc.method, "/status", nil)
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status || rec.Header().Get("Access-Control-Allow-Origin") != tc.allowed {
			t.Errorf("%s from %q: status %d, allowed origin %q; want %d, %q", tc.method, tc.origin,
				rec.Code, rec.Header().Get("Access-Control-Allow-Origin"), tc.status, tc.allowed)
		}
	}
	open := httpedge.Status(httpedge.StatusConfig{Gatherer: prometheus.NewRegistry(), CORSAllowedOrigins: []string{"*"}})
	req := httptest.NewRequest(http.MethodGet, "/status", nil)
	req.Header.Set("Origin", "http://anywhere.example")
	rec := httptest.NewRecorder()
	open.ServeHTTP(rec, req)
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("with *: allowed origin %q", got)
	}
}
