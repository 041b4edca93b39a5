package poller

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests, bytes, notModified, handedOver, snapshots, errors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	return &metrics{
		requests:    counter("poller_source_requests_total", "Requests made to api-conference's conference list."),
		bytes:       counter("poller_source_response_bytes_total", "Bytes of conference-list bodies received."),
		notModified: counter("poller_not_modified_total", "Polls answered 304: nothing changed."),
		handedOver:  counter("poller_changes_handed_over_total", "Changes sent to api-attendee's internal endpoint."),
		snapshots:   counter("poller_snapshots_total", "Complete lists sent as snapshots (deletes by set difference)."),
		errors:      counter("poller_errors_total", "Polls that failed and were retried after a backoff."),
	}
}
