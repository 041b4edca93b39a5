package redisstream

import "github.com/prometheus/client_golang/prometheus"

// lagBuckets are the buckets of the propagation-lag histograms, in seconds: from a
// millisecond to the minutes a backlog or an outage can take.
var lagBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// metrics are the one record of what a Consumer has done: Prometheus collectors, registered on
// Config.Registerer when it is set, and read by the tests through testutil when it is not.
type metrics struct {
	// read counts entries received, by XREADGROUP or by reclaiming.
	read prometheus.Counter
	// reclaimed counts entries taken over from idle consumers (including this one).
	reclaimed prometheus.Counter
	// applied counts entries applied and acked.
	applied prometheus.Counter
	// deadLettered counts entries moved to the dead-letter stream.
	deadLettered prometheus.Counter
	// retries counts failed rounds that were retried after a backoff: reconnects included.
	retries prometheus.Counter
	// groupsCreated counts XGROUP CREATE calls that made the group (at start, after NOGROUP).
	groupsCreated prometheus.Counter
	// lag observes applied_at - occurred_at of every change this consumer applied.
	lag prometheus.Histogram
}

// newMetrics makes the collectors of the consumer of stream in group, labelled with both so
// that consumers of several streams can share one registry.
func newMetrics(stream, group string) *metrics {
	labels := prometheus.Labels{"stream": stream, "group": group}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "attendee_consumer_" + name, Help: help, ConstLabels: labels})
	}
	return &metrics{
		read:          counter("entries_read_total", "Stream entries received, new or reclaimed."),
		reclaimed:     counter("entries_reclaimed_total", "Stream entries reclaimed from idle consumers with XAUTOCLAIM."),
		applied:       counter("entries_applied_total", "Stream entries applied and acked."),
		deadLettered:  counter("entries_dead_lettered_total", "Stream entries moved to the dead-letter stream."),
		retries:       counter("retries_total", "Failed rounds retried after a backoff, reconnects included."),
		groupsCreated: counter("groups_created_total", "Consumer groups created, at start or after NOGROUP."),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "attendee_consumer_lag_seconds",
			Help:        "Propagation lag of each change the consumer applied: applied_at - occurred_at.",
			ConstLabels: labels, Buckets: lagBuckets,
		}),
	}
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, col := range []prometheus.Collector{m.read, m.reclaimed, m.applied, m.deadLettered, m.retries, m.groupsCreated, m.lag} {
		if err := reg.Register(col); err != nil {
			return err
		}
	}
	return nil
}
