package server

import "github.com/prometheus/client_golang/prometheus"

// newLagHistogram registers the histogram of the propagation lag of changes that arrive
// through the internal endpoint (pull mode).
func newLagHistogram(reg prometheus.Registerer) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "attendee_internal_lag_seconds",
		Help:    "Propagation lag of each change applied through /internal/: applied_at - occurred_at.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
	})
	reg.MustRegister(h)
	return h
}
