package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// idleCost is what a running sync path costs per second while nothing is written: the relay's
// looks at the outbox and claims (from its own counters), and CPU time, in ms per second, of
// the syncer and of the Postgres backends of the stack's database (from /proc; the other
// services are idle too, so the backends' time is the relay's).
type idleCost struct {
	polls, claims         float64
	syncerCPU, backendCPU float64
}

// measureIdle watches the stack for d with no writes.
func measureIdle(ctx context.Context, s *services, d time.Duration) (idleCost, error) {
	if err := sleep(ctx, time.Second); err != nil { // let the last batch's aftermath pass
		return idleCost{}, err
	}
	before, err := relayCounters(ctx, s.syncer.URL())
	if err != nil {
		return idleCost{}, err
	}
	pids, err := backendPids(ctx, s)
	if err != nil {
		return idleCost{}, err
	}
	syncerCPU, backendCPU := cpuTime(s.syncer.Pid()), map[int]time.Duration{}
	for _, p := range pids {
		backendCPU[p] = cpuTime(p)
	}
	start := time.Now()
	if err := sleep(ctx, d); err != nil {
		return idleCost{}, err
	}
	took := time.Since(start).Seconds()
	after, err := relayCounters(ctx, s.syncer.URL())
	if err != nil {
		return idleCost{}, err
	}
	var backends time.Duration
	for p, t := range backendCPU {
		if now := cpuTime(p); now >= t {
			backends += now - t
		}
	}
	perSecond := func(t time.Duration) float64 { return float64(t) / float64(time.Millisecond) / took }
	return idleCost{
		polls:     (after["relay_outbox_polls_total"] - before["relay_outbox_polls_total"]) / took,
		claims:    (after["relay_claims_total"] - before["relay_claims_total"]) / took,
		syncerCPU: perSecond(cpuTime(s.syncer.Pid()) - syncerCPU), backendCPU: perSecond(backends),
	}, nil
}

// backendPids are the Postgres backends connected to the stack's database, but the one asking.
func backendPids(ctx context.Context, s *services) ([]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()`)
	if err != nil {
		return nil, fmt.Errorf("list backends: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}

// cpuTime is the user and system CPU time process pid has used, or 0 if it cannot be read.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces: state is
	// the first, utime the 12th and stime the 13th, in clock ticks of 1/100 s.
	_, rest, ok := bytes.Cut(b, []byte(") "))
	f := strings.Fields(string(rest))
	if !ok || len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

// relayCounters reads the syncer's relay counters, summed over their labels.
func relayCounters(ctx context.Context, syncerURL string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, syncerURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape the syncer: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape the syncer: %w", err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse the syncer's metrics: %w", err)
	}
	out := map[string]float64{}
	for _, name := range []string{"relay_outbox_polls_total", "relay_claims_total", "relay_batches_total"} {
		for _, m := range families[name].GetMetric() {
			out[name] += m.GetCounter().GetValue()
		}
	}
	return out, nil
}
