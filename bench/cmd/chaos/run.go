package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"conferencego/bench/stack"
	"conferencego/syncer/pgcluster"
)

// config is one chaos run: every mode of Modes, DURATION in all (an equal share each).
type config struct {
	// Modes are push (the outbox table), push-logical (logical-decoding messages, on a cluster
	// with wal_level=logical, so only with OwnPostgres) and pull; empty means all three, or the
	// first and last without OwnPostgres.
	Modes    []string
	Duration time.Duration
	Seed     int64
	Rate     float64 // writes per second, open loop
	AdminURL string
	BinDir   string
	Out      string
	Log      *slog.Logger
	// Skip names fault kinds the run leaves out.
	Skip []string
	// OwnPostgres runs each mode on a Postgres cluster of its own (pgcluster.New), which
	// the "postgres restarted" fault stops and starts; without it the run uses AdminURL's
	// server and leaves that fault out.
	OwnPostgres bool
}

// faultRun is one fault that was injected.
type faultRun struct {
	Kind     string
	At       time.Duration // injected, since the run's start
	Held     time.Duration
	Converge time.Duration // from the heal until the copy had everything committed before it
	Failed   bool          // did not converge within the deadline
}

// procStat is a process's RSS and goroutines at the start and the end of a run.
type procStat struct {
	Name                   string
	RSSStart, RSSEnd       int64
	GoroutStart, GoroutEnd float64
}

// result is what one mode's run found.
type result struct {
	Mode                   string
	Writes, WriteErrors    int64
	Skipped                int64 // open-loop writes not started because too many were in flight
	Lost, Stale, Phantom   int
	Backwards              int // sampled VO versions lower than one sampled before
	Duplicates, StreamLen  int
	PeakOutbox, PeakStream int64
	Faults                 []faultRun
	Samples                []sample
	Procs                  []procStat
	Converged              bool
	Took                   time.Duration
	FirstDiff              string
}

// run is one mode's chaos: the stack, open-loop writes for d, faults, then heal and check.
type run struct {
	cfg  config
	mode string // push or pull
	// name is the mode as the report names it (push, push-logical, pull); logical runs push on
	// the logical-decoding transport.
	name    string
	logical bool

	rng  *rand.Rand // the scheduler's: which fault, how long
	wrng *rand.Rand // the writer's own, so that the two never share one
	log  *slog.Logger

	db       *stack.Database
	pool     *pgxpool.Pool
	redis    *redisProc
	rdb      *redis.Client
	stream   string
	tp       *toxiproxy.ApiServer
	redisPx  *toxiproxy.Proxy
	confPx   *toxiproxy.Proxy
	services map[string]*svc
	api      *http.Client
	apiURL   string
	locs     []int64
	start    time.Time

	mu       sync.Mutex
	live     []int64 // conferences the writer believes live
	writes   int64
	errs     int64
	skipped  int64
	maxVer   map[int64]int64
	back     int
	samples  []sample
	cleanups []func()
	cluster  *pgcluster.Cluster // with OwnPostgres
	restarts int
}

func (r *run) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// runMode runs one mode for d.
func runMode(ctx context.Context, cfg config, name string, d time.Duration, seed int64) (*result, error) {
	mode, logical := strings.CutSuffix(name, "-logical")
	r := &run{cfg: cfg, mode: mode, name: name, logical: logical, rng: rand.New(rand.NewPCG(uint64(seed), 14)), wrng: rand.New(rand.NewPCG(uint64(seed), 15)), log: cfg.Log.With("mode", name),
		services: map[string]*svc{}, api: &http.Client{Timeout: 10 * time.Second}, maxVer: map[int64]int64{},
		stream: "chaos." + stack.RandomHex(4) + ".changes"}
	defer r.cleanup()
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	res := &result{Mode: name}
	res.Procs = r.procStats(nil)
	r.start = time.Now()

	wctx, stopWrites := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.write(wctx) })
	sctx, stopSampling := context.WithCancel(ctx)
	var sg sync.WaitGroup
	sg.Go(func() { r.sample(sctx) })
	defer func() { // on an error return; calling them again after the check is harmless
		stopWrites()
		wg.Wait()
		stopSampling()
		sg.Wait()
	}()

	deadline := time.Now().Add(d)
	faults := r.faults()
	snapTaken := false
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if mode == "push" && !snapTaken {
			// An older snapshot for the "restart from an older snapshot" fault.
			if err := r.redis.snapshot(ctx, r.rdb); err == nil {
				snapTaken = true
			}
		}
		f := faults[r.rng.IntN(len(faults))]
		hold := time.Duration(1000+r.rng.IntN(3000)) * time.Millisecond
		if f.hold > 0 {
			hold = f.hold
		}
		at := time.Since(r.start)
		r.log.Info("fault", "kind", f.kind, "hold", hold.String())
		if err := f.inject(ctx); err != nil {
			return nil, fmt.Errorf("inject %s: %w", f.kind, err)
		}
		sleep(ctx, hold)
		if err := f.heal(ctx); err != nil {
			return nil, fmt.Errorf("heal %s: %w", f.kind, err)
		}
		took, ok := r.catchUp(ctx, 90*time.Second)
		res.Faults = append(res.Faults, faultRun{Kind: f.kind, At: at, Held: hold, Converge: took, Failed: !ok})
		sleep(ctx, time.Duration(500+r.rng.IntN(2000))*time.Millisecond)
	}
	stopWrites()
	wg.Wait()

	// Heal is done (every fault heals before the next); wait until quiet and check.
	start := time.Now()
	res.Converged, res.FirstDiff = r.awaitQuiet(ctx, 120*time.Second)
	res.Took = time.Since(start)
	stopSampling()
	sg.Wait()
	res.Lost, res.Stale, res.Phantom, _ = r.diff(ctx)
	res.Procs = r.procStats(res.Procs)
	r.mu.Lock()
	res.Writes, res.WriteErrors, res.Skipped, res.Backwards = r.writes, r.errs, r.skipped, r.back
	res.Samples = append([]sample(nil), r.samples...)
	r.mu.Unlock()
	for _, s := range res.Samples {
		res.PeakOutbox = max(res.PeakOutbox, s.Outbox)
		res.PeakStream = max(res.PeakStream, s.Stream)
	}
	if mode == "push" {
		res.StreamLen, res.Duplicates = r.duplicates(ctx)
	}
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// call sends body as JSON to api-conference and decodes a 2xx answer into out.
func (r *run) call(ctx context.Context, method, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.apiURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.api.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// write starts a write every 1/Rate seconds, whatever happened to the earlier ones (open loop),
// with at most 64 in flight; one that would exceed that is skipped and counted.
func (r *run) write(ctx context.Context) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / r.cfg.Rate))
	defer tick.Stop()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	defer wg.Wait()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n++
		select {
		case sem <- struct{}{}:
		default:
			r.mu.Lock()
			r.skipped++
			r.mu.Unlock()
			continue
		}
		r.mu.Lock()
		roll := r.wrng.Float64()
		var id int64 = -1
		if len(r.live) > 4 && roll >= 0.4 {
			k := r.wrng.IntN(len(r.live))
			id = r.live[k]
			if roll >= 0.85 { // a delete: the writer forgets it at once
				r.live = append(r.live[:k], r.live[k+1:]...)
			}
		}
		loc := r.locs[r.wrng.IntN(len(r.locs))]
		month, cap := 1+r.wrng.IntN(12), 10+r.wrng.IntN(1000)
		r.mu.Unlock()
		serial := n // the loop's n moves on while the write runs
		wg.Go(func() {
			defer func() { <-sem }()
			var err error
			switch {
			case id < 0:
				var out struct {
					ID int64 `json:"id"`
				}
				starts := time.Date(2027, time.Month(month), 1, 9, 0, 0, 0, time.UTC)
				err = r.call(ctx, http.MethodPost, "/api/conferences/", map[string]any{"name": fmt.Sprintf("Chaos %d", serial),
					"starts": starts.Format(time.RFC3339), "ends": starts.AddDate(0, 0, 2).Format(time.RFC3339),
					"max_presentations": 5, "max_attendees": cap, "location": loc}, &out)
				if err == nil {
					r.mu.Lock()
					r.live = append(r.live, out.ID)
					r.mu.Unlock()
				}
			case roll >= 0.85:
				err = r.call(ctx, http.MethodDelete, "/api/conferences/"+strconv.FormatInt(id, 10)+"/", nil, nil)
			default:
				err = r.call(ctx, http.MethodPut, "/api/conferences/"+strconv.FormatInt(id, 10)+"/",
					map[string]any{"name": fmt.Sprintf("Chaos %d rev %d", id, serial), "max_attendees": cap}, nil)
			}
			r.mu.Lock()
			if err != nil && ctx.Err() == nil {
				r.errs++
			} else if err == nil {
				r.writes++
			}
			r.mu.Unlock()
		})
	}
}

// lagSQL is the age of the oldest change the copy does not have, and how many conferences it
// is behind on.
const lagSQL = `SELECT coalesce(extract(epoch FROM now() - min(c.updated)), 0)::float8, count(*)
	FROM conference.conferences c LEFT JOIN attendee.conference_vos v ON v.conference_id = c.id
	WHERE v.conference_id IS NULL OR v.deleted OR v.version < c.version`
