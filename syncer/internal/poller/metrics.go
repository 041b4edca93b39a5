package poller

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests, bytes, notModified, handedOver, reconciles, errors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	return &metrics{
		requests:    counter("poller_source_requests_total", "Requests made to api-conference: feed, state listing, look-ups and list pages."),
		bytes:       counter("poller_source_response_bytes_total", "Bytes of api-conference's answers received."),
		notModified: counter("poller_not_modified_total", "Polls that found nothing new: an empty feed page, or a 304 of the list."),
		handedOver:  counter("poller_changes_handed_over_total", "Changes sent to api-attendee's internal endpoint."),
		reconciles:  counter("poller_reconciles_total", "Reconciles that made the copy equal to the source (at start, after a 410, periodically)."),
		errors:      counter("poller_errors_total", "Polls that failed and were retried after a backoff."),
	}
}
