package relay

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	published, deadLettered, batches, errors prometheus.Counter
	claims, polls                            prometheus.Counter
	listenerReconnects, epochsStarted        prometheus.Counter
	trimLosses, waitShortfalls, slotsLost    prometheus.Counter
	reconciles, reconcileErrors              prometheus.Counter
	lag                                      prometheus.Histogram
	losses                                   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, stream string) *metrics {
	labels := prometheus.Labels{"stream": stream}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels})
		reg.MustRegister(c)
		return c
	}
	m := &metrics{
		published:          counter("relay_events_published_total", "Outbox events written to the stream."),
		deadLettered:       counter("relay_events_dead_lettered_total", "Outbox rows the contract refused, parked in the dead-letter stream."),
		batches:            counter("relay_batches_total", "Outbox batches published."),
		claims:             counter("relay_claims_total", "Claiming transactions, those that found nothing included."),
		polls:              counter("relay_outbox_polls_total", "Looks whether the outbox holds rows, made in poll mode (SYNC_OUTBOX_POLL) after an empty claim: the idle cost of polling."),
		errors:             counter("relay_errors_total", "Publishing rounds that failed and were retried after a backoff."),
		listenerReconnects: counter("relay_listener_reconnects_total", "Times the LISTEN connection was (re)opened after a failure."),
		epochsStarted:      counter("relay_epochs_started_total", "Times Redis was found without the epoch marker (new, restarted empty or flushed)."),
		trimLosses:         counter("relay_trim_losses_total", "Times the stream's length cap was found to have trimmed entries a consumer group never read."),
		waitShortfalls:     counter("relay_wait_shortfalls_total", "Batches kept in the outbox because fewer replicas than SYNC_WAIT_REPLICAS acknowledged them in time."),
		slotsLost:          counter("relay_slots_lost_total", "Times the logical transport's replication slot was found invalidated by the server (max_slot_wal_keep_size) and made anew, with a reconcile."),
		reconciles:         counter("relay_reconciles_total", "Full reconciles that succeeded."),
		reconcileErrors:    counter("relay_reconcile_errors_total", "Full reconciles that failed and were retried."),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "relay_publish_lag_seconds", Help: "Age of the oldest event of each batch when Redis accepted it.",
			ConstLabels: labels, Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	m.losses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "relay_redis_losses_total", ConstLabels: labels,
		Help: "Times Redis was found to have lost stream entries it had accepted, by how it showed: behind (the stream ends before what the relay recorded as published), group_ahead, trimmed (unread entries trimmed), pending (unacknowledged deliveries gone).",
	}, []string{"cause"})
	for _, c := range []string{lossBehind, lossGroupAhead, lossTrimmed, lossPending} {
		m.losses.WithLabelValues(c)
	}
	reg.MustRegister(m.lag, m.losses)
	return m
}
