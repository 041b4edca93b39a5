package httpedge

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// StatusConfig says what GET /status answers: a few named figures of the process's own
// metrics, as JSON, for pages that must not parse the Prometheus text format.
type StatusConfig struct {
	// Service and Mode name the process and how it syncs ("push", "pull").
	Service, Mode string
	// Gatherer is the process's registry. Reading it, rather than the components' own
	// counters, keeps the endpoint independent of how each component counts.
	Gatherer prometheus.Gatherer
	// Metrics are the metric families to report. A family the process has not registered
	// (one of the other mode) is left out of the answer.
	Metrics []string
	// CORSAllowedOrigins, when set, makes the handler answer CORS itself ("*" allows any),
	// for a process without the fiber edge (the syncer). Leave it empty behind NewApp.
	CORSAllowedOrigins []string
}

// StatusBody is the answer of GET /status.
type StatusBody struct {
	Service string `json:"service"`
	Mode    string `json:"mode"`
	// Time is when the figures were read, so a page can compute rates between two answers.
	Time    time.Time         `json:"time"`
	Metrics map[string]Figure `json:"metrics"`
}

// Figure is one metric family, summed over its labels.
type Figure struct {
	Type string `json:"type"` // counter, gauge or histogram
	// Value is the sum of a counter's or a gauge's series.
	Value *float64 `json:"value,omitempty"`
	// Count, Sum and Buckets are a histogram's, its series merged; Buckets are cumulative,
	// by upper bound, the +Inf bucket being Count.
	Count   *uint64  `json:"count,omitempty"`
	Sum     *float64 `json:"sum,omitempty"`
	Buckets []Bucket `json:"buckets,omitempty"`
}

// Bucket is a histogram's cumulative count of observations up to LE.
type Bucket struct {
	LE    float64 `json:"le"`
	Count uint64  `json:"count"`
}

// Status returns the GET /status handler (net/http, so that both the syncer's mux and,
// through fiber's adaptor, the services can serve it).
func Status(cfg StatusConfig) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(cfg.CORSAllowedOrigins) > 0 {
			allowOrigin(w, r, cfg.CORSAllowedOrigins)
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		body, err := ReadStatus(cfg)
		if err != nil {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(NewProblem(http.StatusInternalServerError, "the metrics could not be read"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(body)
	})
}

// ReadStatus gathers the named figures now.
func ReadStatus(cfg StatusConfig) (StatusBody, error) {
	families, err := cfg.Gatherer.Gather()
	out := StatusBody{Service: cfg.Service, Mode: cfg.Mode, Time: time.Now().UTC(), Metrics: map[string]Figure{}}
	if err != nil && len(families) == 0 {
		return out, err
	}
	// A collector that failed (a Redis that is down) leaves out its own figures only:
	// Gather returns what the others collected along with the error.
	for _, mf := range families {
		if slices.Contains(cfg.Metrics, mf.GetName()) {
			if f, ok := figure(mf); ok {
				out.Metrics[mf.GetName()] = f
			}
		}
	}
	return out, nil
}

func figure(mf *dto.MetricFamily) (Figure, bool) {
	switch mf.GetType() {
	case dto.MetricType_COUNTER, dto.MetricType_GAUGE:
		var v float64
		for _, m := range mf.GetMetric() {
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		typ := "counter"
		if mf.GetType() == dto.MetricType_GAUGE {
			typ = "gauge"
		}
		return Figure{Type: typ, Value: &v}, true
	case dto.MetricType_HISTOGRAM:
		return histogram(mf.GetMetric()), true
	}
	return Figure{}, false
}

// histogram merges the series of a histogram family; series of one family share their bounds.
func histogram(ms []*dto.Metric) Figure {
	var count uint64
	var sum float64
	byLE := map[float64]uint64{}
	for _, m := range ms {
		h := m.GetHistogram()
		count += h.GetSampleCount()
		sum += h.GetSampleSum()
		for _, b := range h.GetBucket() {
			if !math.IsInf(b.GetUpperBound(), 1) {
				byLE[b.GetUpperBound()] += b.GetCumulativeCount()
			}
		}
	}
	buckets := make([]Bucket, 0, len(byLE))
	for le, n := range byLE {
		buckets = append(buckets, Bucket{LE: le, Count: n})
	}
	slices.SortFunc(buckets, func(a, b Bucket) int { return cmpFloat(a.LE, b.LE) })
	return Figure{Type: "histogram", Count: &count, Sum: &sum, Buckets: buckets}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// allowOrigin answers CORS for a GET-only endpoint that needs no credentials.
func allowOrigin(w http.ResponseWriter, r *http.Request, allowed []string) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	w.Header().Add("Vary", "Origin")
	if slices.Contains(allowed, "*") {
		w.Header().Set("Access-Control-Allow-Origin", "*")
	} else if slices.Contains(allowed, origin) {
		w.Header().Set("Access-Control-Allow-Origin", origin)
	} else {
		return
	}
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		w.Header().Set("Access-Control-Max-Age", "600")
	}
}
