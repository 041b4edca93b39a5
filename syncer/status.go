package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"conferencego/httpedge"
	"conferencego/syncer/redisconn"
)

// statusMetrics are the figures GET /status reports, of either mode; the other mode's are
// not registered and so left out.
var statusMetrics = []string{
	"relay_events_published_total", "relay_publish_lag_seconds", "relay_errors_total",
	"relay_events_dead_lettered_total", "relay_reconciles_total",
	"relay_stream_length", "relay_stream_pending", "relay_stream_group_lag",
	"relay_dead_letters", "relay_outbox_backlog", "relay_slot_wal_bytes",
	"poller_source_requests_total", "poller_not_modified_total", "poller_changes_handed_over_total",
	"poller_errors_total", "poller_reconciles_total",
	"sync_source_mismatch",
}

// withStatus serves GET /status from reg, answering CORS for origins, and everything else
// with next.
func withStatus(next http.Handler, reg prometheus.Gatherer, mode string, origins []string) http.Handler {
	mux := http.NewServeMux()
	status := httpedge.Status(httpedge.StatusConfig{
		Service: "syncer", Mode: mode, Gatherer: reg, Metrics: statusMetrics, CORSAllowedOrigins: origins,
	})
	mux.Handle("GET /status", status)
	mux.Handle("OPTIONS /status", status)
	mux.Handle("/", next)
	return mux
}

// outboxBacklogCap bounds the count of waiting outbox rows (migration 0008's outbox_backlog):
// a scrape reads at most this many index entries.
const outboxBacklogCap = 100000

// collectTimeout bounds what a scrape waits for Redis, and then for Postgres.
const collectTimeout = time.Second

// streamCollector reads, at each scrape, what the push path holds: the stream's length, its
// groups' pending and undelivered entries, the dead letters and the outbox backlog. They are
// states of Redis and Postgres rather than events the relay counts, so they are read when
// asked.
type streamCollector struct {
	rdb  redis.UniversalClient
	pool *pgxpool.Pool
	keys redisconn.StreamKeys
	slot string // the logical transport's replication slot; empty on the table transport

	length, pending, groupLag, deadLetters, backlog, slotWAL *prometheus.Desc
}

// newStreamCollector reads the push path of stream; with slot (the logical transport) also how
// much WAL that slot keeps.
func newStreamCollector(rdb redis.UniversalClient, pool *pgxpool.Pool, stream, slot string) *streamCollector {
	labels := prometheus.Labels{"stream": stream}
	desc := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, labels) }
	return &streamCollector{
		rdb: rdb, pool: pool, keys: redisconn.Keys(stream), slot: slot,
		slotWAL: desc("relay_slot_wal_bytes", "Bytes of WAL the logical transport's replication slot keeps, from its restart position to the server's current one: "+
			"it grows while the relay is away, and the server gives the slot up past max_slot_wal_keep_size."),
		length:      desc("relay_stream_length", "Entries in the stream now (XINFO STREAM)."),
		pending:     desc("relay_stream_pending", "Entries delivered to a consumer group and not yet acknowledged, over all groups."),
		groupLag:    desc("relay_stream_group_lag", "Entries of the stream not yet delivered to a consumer group, over all groups."),
		deadLetters: desc("relay_dead_letters", "Entries in the dead-letter stream now."),
		backlog:     desc("relay_outbox_backlog", fmt.Sprintf("Outbox rows waiting to be published (counted up to %d).", outboxBacklogCap)),
	}
}

func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.length, c.pending, c.groupLag, c.deadLetters, c.backlog, c.slotWAL} {
		ch <- d
	}
}

func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, err error) {
		// A source that does not answer leaves its figure out rather than failing the
		// scrape: /metrics would answer 500 for all, and /status show nothing.
		if err == nil {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
		}
	}
	rctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	n, err := c.streamLength(rctx, c.keys.Stream)
	gauge(c.length, n, err)
	pending, lag, err := c.groups(rctx)
	gauge(c.pending, pending, err)
	gauge(c.groupLag, lag, err)
	n, err = c.streamLength(rctx, c.keys.DeadLetter)
	gauge(c.deadLetters, n, err)

	pctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	var backlog int64
	err = c.pool.QueryRow(pctx, "SELECT outbox_backlog($1)", outboxBacklogCap).Scan(&backlog)
	gauge(c.backlog, float64(backlog), err)
	if c.slot != "" {
		var kept float64
		err = c.pool.QueryRow(pctx, `SELECT (pg_current_wal_lsn() - restart_lsn)::float8 FROM pg_replication_slots
            WHERE slot_name = $1 AND restart_lsn IS NOT NULL`, c.slot).Scan(&kept)
		gauge(c.slotWAL, kept, err)
	}
}

// streamLength is a stream's length; a stream nobody wrote to yet is empty. It asks XINFO
// STREAM, which the syncer's Redis user may run on both keys (XLEN it may not).
func (c *streamCollector) streamLength(ctx context.Context, key string) (float64, error) {
	info, err := c.rdb.XInfoStream(ctx, key).Result()
	if isNoSuchKey(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("XINFO STREAM %s: %w", key, err)
	}
	return float64(info.Length), nil
}

func (c *streamCollector) groups(ctx context.Context) (pending, lag float64, err error) {
	groups, err := c.rdb.XInfoGroups(ctx, c.keys.Stream).Result()
	if isNoSuchKey(err) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("XINFO GROUPS %s: %w", c.keys.Stream, err)
	}
	for _, g := range groups {
		pending += float64(g.Pending)
		if g.Lag > 0 { // Redis reports an unknown lag (after XDEL or trimming) as nil, read as 0 or -1
			lag += float64(g.Lag)
		}
	}
	return pending, lag, nil
}

func isNoSuchKey(err error) bool { return err != nil && strings.Contains(err.Error(), "no such key") }
