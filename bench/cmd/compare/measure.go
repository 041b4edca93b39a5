package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"
)

// change is one write at the source and when the copy caught up with it.
type change struct {
	conferenceID, version int64
	typ                   string
	occurredAt            time.Time
	appliedAt             *time.Time
	status                string // applied, skipped, lost
}

func (c change) lag() time.Duration { return c.appliedAt.Sub(c.occurredAt) }

// changes reads every recorded source change and the first moment the copy held it or
// something newer: a version at least as high, or a tombstone. A change the copy never saw is
// "skipped" when its conference was created and deleted before the copy saw it at all (a
// poller can miss such a short life, and the end state is right), and "lost" otherwise.
func changes(ctx context.Context, pool *pgxpool.Pool) ([]change, error) {
	rows, err := pool.Query(ctx, `
SELECT s.conference_id, s.version, s.type, s.occurred_at,
  (SELECT min(a.applied_at) FROM compare.applied a
    WHERE a.conference_id = s.conference_id
      AND (a.deleted OR (s.type <> 'conference.deleted' AND a.version >= s.version))),
  EXISTS (SELECT 1 FROM compare.applied a WHERE a.conference_id = s.conference_id)
    OR EXISTS (SELECT 1 FROM attendee.conference_vos v WHERE v.conference_id = s.conference_id),
  EXISTS (SELECT 1 FROM conference.conferences c WHERE c.id = s.conference_id)
FROM compare.source s ORDER BY s.occurred_at`)
	if err != nil {
		return nil, fmt.Errorf("read measurements: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (change, error) {
		var c change
		var seen, live bool
		if err := r.Scan(&c.conferenceID, &c.version, &c.typ, &c.occurredAt, &c.appliedAt, &seen, &live); err != nil {
			return c, err
		}
		switch {
		case c.appliedAt != nil:
			c.status = "applied"
		case !seen && !live:
			c.status = "skipped"
		default:
			c.status = "lost"
		}
		return c, nil
	})
}

// load is what syncing cost the source: requests and bytes of the conference list served by
// api-conference (nothing else reads it during a run), and rows its tables gave up.
type load struct {
	requests, bytes float64
	rowsRead        int64
}

func (l load) minus(o load) load {
	return load{requests: l.requests - o.requests, bytes: l.bytes - o.bytes, rowsRead: l.rowsRead - o.rowsRead}
}

func scrapeLoad(ctx context.Context, conferenceURL string, pool *pgxpool.Pool) (load, error) {
	var l load
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, conferenceURL+"/metrics", nil)
	if err != nil {
		return l, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return l, fmt.Errorf("scrape api-conference: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return l, fmt.Errorf("scrape api-conference: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return l, fmt.Errorf("scrape api-conference: status %d: %.500s", resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return l, fmt.Errorf("parse api-conference metrics: %w", err)
	}
	sum := func(family string) float64 {
		var total float64
		mf := families[family]
		if mf == nil {
			return 0
		}
		for _, m := range mf.GetMetric() {
			route, method := "", ""
			for _, lp := range m.GetLabel() {
				switch lp.GetName() {
				case "route":
					route = lp.GetValue()
				case "method":
					method = lp.GetValue()
				}
			}
			if route == "/api/conferences" && method == http.MethodGet {
				total += m.GetCounter().GetValue()
			}
		}
		return total
	}
	l.requests = sum("http_requests_total")
	l.bytes = sum("http_response_body_bytes_total")
	err = pool.QueryRow(ctx, `SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0)::bigint
		FROM pg_stat_user_tables WHERE schemaname = 'conference'`).Scan(&l.rowsRead)
	return l, err
}

// floors measures the machine's own round trips, in the same run: a Postgres commit of one
// logged row, and a Redis PING. Medians of n each.
func floors(ctx context.Context, pool *pgxpool.Pool, redisURL string, n int) (pgCommit, redisRTT time.Duration, err error) {
	if _, err := pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS compare.floor (x int)"); err != nil {
		return 0, 0, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Release()
	pg := make([]time.Duration, n)
	for i := range pg {
		t := time.Now()
		if _, err := conn.Exec(ctx, "INSERT INTO compare.floor VALUES (1)"); err != nil {
			return 0, 0, err
		}
		pg[i] = time.Since(t)
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return 0, 0, err
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	rd := make([]time.Duration, n)
	for i := range rd {
		t := time.Now()
		if err := rdb.Ping(ctx).Err(); err != nil {
			return 0, 0, err
		}
		rd[i] = time.Since(t)
	}
	slices.Sort(pg)
	slices.Sort(rd)
	return pg[n/2], rd[n/2], nil
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
