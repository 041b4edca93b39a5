package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"conferencego/bench/stack"
	"conferencego/syncer/changeevent"
	"conferencego/syncer/pgcluster"
)

// config is one chaos run: both modes, DURATION in all (half each).
type config struct {
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

// sample is the state of the system at one moment of a run.
type sample struct {
	At     time.Duration // since the run's start
	Lag    float64       // seconds: age of the oldest change the copy does not have yet
	Behind int           // conferences whose copy is behind
	Outbox int64
	Stream int64
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

// svc is one service process, restartable with its spec.
type svc struct {
	spec stack.Spec
	mu   sync.Mutex
	p    *stack.Process
}

func (s *svc) proc() *stack.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p
}

func (s *svc) start(ctx context.Context) error {
	p, err := stack.Start(ctx, s.spec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.p = p
	s.mu.Unlock()
	return nil
}

// run is one mode's chaos: the stack, open-loop writes for d, faults, then heal and check.
type run struct {
	cfg  config
	mode string
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
func runMode(ctx context.Context, cfg config, mode string, d time.Duration, seed int64) (*result, error) {
	r := &run{cfg: cfg, mode: mode, rng: rand.New(rand.NewPCG(uint64(seed), 14)), wrng: rand.New(rand.NewPCG(uint64(seed), 15)), log: cfg.Log.With("mode", mode),
		services: map[string]*svc{}, api: &http.Client{Timeout: 10 * time.Second}, maxVer: map[int64]int64{},
		stream: "chaos." + stack.RandomHex(4) + ".changes"}
	defer r.cleanup()
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	res := &result{Mode: mode}
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

// setup starts Postgres's database, Redis (push), the proxies and the three services.
func (r *run) setup(ctx context.Context) error {
	admin := r.cfg.AdminURL
	if r.cfg.OwnPostgres {
		c, err := pgcluster.New(ctx)
		if err != nil {
			return err
		}
		r.cluster = c
		r.cleanups = append(r.cleanups, c.Remove)
		admin = c.AdminURL()
	}
	db, err := stack.CreateDatabase(ctx, admin, "chaos_")
	if err != nil {
		return err
	}
	r.db = db
	r.cleanups = append(r.cleanups, func() { _ = db.Drop() })
	if r.pool, err = pgxpool.New(ctx, db.URL); err != nil {
		return err
	}
	r.cleanups = append(r.cleanups, r.pool.Close)
	r.tp = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	logDir := filepath.Join(r.cfg.Out, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	token := stack.RandomHex(16)
	common := []string{"PATH=" + os.Getenv("PATH"), "LOG_FORMAT=json", "LOG_LEVEL=warn", "SYNC_TOKEN=" + token,
		"SYNC_MODE=" + r.mode, "SYNC_STREAM=" + r.stream, "SYNC_GROUP=chaos"}
	var redisURL string
	if r.mode == "push" {
		if r.redis, err = startRedis(ctx, filepath.Join(r.cfg.Out, "redis-"+stack.RandomHex(3))); err != nil {
			return err
		}
		r.cleanups = append(r.cleanups, r.redis.kill)
		r.rdb = redis.NewClient(&redis.Options{Addr: r.redis.addr, MaxRetries: -1})
		r.cleanups = append(r.cleanups, func() { r.rdb.Close() })
		if r.redisPx, err = r.proxy("redis", r.redis.addr); err != nil {
			return err
		}
		redisURL = "redis://" + r.redisPx.Listen + "/0"
	}
	add := func(name string, env ...string) (*svc, error) {
		addr, err := stack.FreeAddr()
		if err != nil {
			return nil, err
		}
		s := &svc{spec: stack.Spec{Name: name, Bin: filepath.Join(r.cfg.BinDir, name), Addr: addr,
			Env: append(append([]string(nil), common...), env...), Log: filepath.Join(logDir, r.mode+"-"+name+".log")}}
		if err := s.start(ctx); err != nil {
			return nil, err
		}
		r.services[name] = s
		r.cleanups = append(r.cleanups, func() {
			if p := s.proc(); p != nil {
				p.Stop(15 * time.Second)
			}
		})
		return s, nil
	}
	conf, err := add(stack.Conference, "DATABASE_URL="+db.URL)
	if err != nil {
		return err
	}
	r.apiURL = conf.proc().URL()
	if r.confPx, err = r.proxy("conference", conf.spec.Addr); err != nil {
		return err
	}
	attEnv := []string{"DATABASE_URL=" + db.URL}
	if r.mode == "push" {
		attEnv = append(attEnv, "REDIS_URL="+redisURL, "SYNC_CLAIM_IDLE=1s")
	}
	att, err := add(stack.Attendee, attEnv...)
	if err != nil {
		return err
	}
	syncEnv := []string{"CONFERENCE_URL=http://" + r.confPx.Listen, "ATTENDEE_URL=" + att.proc().URL()}
	if r.mode == "push" {
		syncEnv = append(syncEnv, "DATABASE_URL="+db.URL, "REDIS_URL="+redisURL)
	} else {
		syncEnv = append(syncEnv, "SYNC_POLL_INTERVAL=1s")
	}
	if _, err := add(stack.Syncer, syncEnv...); err != nil {
		return err
	}
	for i, city := range []string{"Austin", "Berlin", "Lisbon"} {
		var out struct {
			ID int64 `json:"id"`
		}
		if err := r.call(ctx, http.MethodPost, "/api/locations/", map[string]any{"name": fmt.Sprintf("Hall %d", i), "city": city, "room_count": 10, "state": "TX"}, &out); err != nil {
			return fmt.Errorf("create a location: %w", err)
		}
		r.locs = append(r.locs, out.ID)
	}
	return nil
}

func (r *run) proxy(name, upstream string) (*toxiproxy.Proxy, error) {
	p := toxiproxy.NewProxy(r.tp, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("start the %s proxy: %w", name, err)
	}
	r.cleanups = append(r.cleanups, p.Stop)
	return p, nil
}

func addToxic(p *toxiproxy.Proxy, name, typ, stream string, attrs map[string]any) error {
	b, err := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": 1.0, "attributes": attrs})
	if err != nil {
		return err
	}
	_, err = p.Toxics.AddToxicJson(bytes.NewReader(b))
	return err
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

// sample records lag, outbox and stream length every 500 ms, and checks that no VO version
// went backwards since the sample before.
func (r *run) sample(ctx context.Context) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s := sample{At: time.Since(r.start)}
		err := r.pool.QueryRow(qctx, lagSQL).Scan(&s.Lag, &s.Behind)
		if err == nil {
			err = r.pool.QueryRow(qctx, "SELECT count(*) FROM conference.outbox").Scan(&s.Outbox)
		}
		if r.rdb != nil {
			s.Stream, _ = r.rdb.XLen(qctx, r.stream).Result() // 0 while Redis is down
		}
		if err == nil {
			r.checkVersions(qctx)
		}
		cancel()
		if err != nil {
			continue // Postgres connections terminated: the next sample will do
		}
		r.mu.Lock()
		r.samples = append(r.samples, s)
		r.mu.Unlock()
	}
}

func (r *run) checkVersions(ctx context.Context) {
	rows, err := r.pool.Query(ctx, "SELECT conference_id, version FROM attendee.conference_vos")
	if err != nil {
		return
	}
	defer rows.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for rows.Next() {
		var id, v int64
		if rows.Scan(&id, &v) != nil {
			return
		}
		if v < r.maxVer[id] {
			r.back++
			r.log.Error("a VO version went backwards", "conference", id, "was", r.maxVer[id], "now", v)
		}
		r.maxVer[id] = max(r.maxVer[id], v)
	}
}

// catchUp waits until the copy holds every change committed before it was called (each live
// conference at least at that version, each one gone then gone or tombstoned in the copy), and
// returns how long that took.
func (r *run) catchUp(ctx context.Context, within time.Duration) (time.Duration, bool) {
	start := time.Now()
	var target map[int64]int64
	for target == nil {
		rows, err := r.pool.Query(ctx, "SELECT id, version FROM conference.conferences")
		if err == nil {
			target = map[int64]int64{}
			for rows.Next() {
				var id, v int64
				if rows.Scan(&id, &v) == nil {
					target[id] = v
				}
			}
			rows.Close()
			if rows.Err() != nil {
				target = nil
			}
		}
		if time.Since(start) > within || ctx.Err() != nil {
			return time.Since(start), false
		}
		if target == nil {
			sleep(ctx, 100*time.Millisecond)
		}
	}
	for {
		behind := -1
		rows, err := r.pool.Query(ctx, "SELECT conference_id, version, deleted FROM attendee.conference_vos")
		if err == nil {
			have := map[int64]int64{}
			for rows.Next() {
				var id, v int64
				var del bool
				if rows.Scan(&id, &v, &del) == nil {
					have[id] = v
				}
			}
			rows.Close()
			behind = 0
			for id, v := range target {
				if have[id] < v {
					behind++
				}
			}
		}
		if behind == 0 {
			return time.Since(start), true
		}
		if time.Since(start) > within || ctx.Err() != nil {
			return time.Since(start), false
		}
		sleep(ctx, 50*time.Millisecond)
	}
}

// diff counts what the check forbids: lost (live, but no live copy), stale (a live copy of
// another version or content) and phantom (a live copy of a conference that is not live).
func (r *run) diff(ctx context.Context) (lost, stale, phantom int, first string) {
	q := func(sql string) (int, string) {
		var n int
		var f *string
		if err := r.pool.QueryRow(ctx, sql).Scan(&n, &f); err != nil {
			return -1, err.Error()
		}
		if f == nil {
			return n, ""
		}
		return n, *f
	}
	var fl, fs, fp string
	lost, fl = q(`SELECT count(*), min(c.id)::text FROM conference.conferences c LEFT JOIN attendee.conference_vos v ON v.conference_id = c.id
		WHERE v.conference_id IS NULL OR v.deleted`)
	stale, fs = q(`SELECT count(*), min(c.id)::text FROM conference.conferences c JOIN attendee.conference_vos v ON v.conference_id = c.id
		WHERE NOT v.deleted AND (v.version <> c.version OR v.name <> c.name OR v.max_attendees <> c.max_attendees
		OR v.starts IS DISTINCT FROM c.starts OR v.ends IS DISTINCT FROM c.ends)`)
	phantom, fp = q(`SELECT count(*), min(v.conference_id)::text FROM attendee.conference_vos v LEFT JOIN conference.conferences c ON c.id = v.conference_id
		WHERE NOT v.deleted AND c.id IS NULL`)
	switch {
	case lost != 0:
		first = "lost conference " + fl
	case stale != 0:
		first = "stale conference " + fs
	case phantom != 0:
		first = "phantom conference " + fp
	}
	return lost, stale, phantom, first
}

// awaitQuiet waits until the outbox is empty and the check finds nothing.
func (r *run) awaitQuiet(ctx context.Context, within time.Duration) (bool, string) {
	start := time.Now()
	for {
		lost, stale, phantom, first := r.diff(ctx)
		var outbox int64 = -1
		_ = r.pool.QueryRow(ctx, "SELECT count(*) FROM conference.outbox").Scan(&outbox)
		if lost == 0 && stale == 0 && phantom == 0 && (outbox == 0 || r.mode == "pull") {
			return true, ""
		}
		if time.Since(start) > within || ctx.Err() != nil {
			return false, fmt.Sprintf("%s (lost %d, stale %d, phantom %d, outbox %d)", first, lost, stale, phantom, outbox)
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// duplicates counts stream entries that repeat an event id of an earlier one.
func (r *run) duplicates(ctx context.Context) (entries, dups int) {
	msgs, err := r.rdb.XRange(ctx, r.stream, "-", "+").Result()
	if err != nil {
		return -1, -1
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		e, err := changeevent.Decode(m.Values)
		if err != nil {
			continue
		}
		entries++
		if seen[e.ID] {
			dups++
		}
		seen[e.ID] = true
	}
	return entries, dups
}

// procStats reads each service's RSS and goroutines; with before, it fills in the end values.
func (r *run) procStats(before []procStat) []procStat {
	if before == nil {
		for _, name := range stack.Services {
			rss, g := r.stat(name)
			before = append(before, procStat{Name: name, RSSStart: rss, GoroutStart: g})
		}
		return before
	}
	for i := range before {
		before[i].RSSEnd, before[i].GoroutEnd = r.stat(before[i].Name)
	}
	return before
}

func (r *run) stat(name string) (rss int64, goroutines float64) {
	p := r.services[name].proc()
	if p == nil {
		return -1, -1
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid())); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				rss = kb << 10
			}
		}
	}
	goroutines = -1
	resp, err := http.Get(p.URL() + "/metrics")
	if err != nil {
		return rss, goroutines
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			goroutines, _ = strconv.ParseFloat(v, 64)
		}
	}
	return rss, goroutines
}

// redisProc is the run's redis-server. It always starts with an append-only file, unless it is
// started from a snapshot.
type redisProc struct {
	addr, dir string
	cmd       *exec.Cmd
	done      chan struct{}
}

func startRedis(ctx context.Context, dir string) (*redisProc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addr, err := stack.FreeAddr()
	if err != nil {
		return nil, err
	}
	p := &redisProc{addr: addr, dir: dir}
	return p, p.start(ctx, true)
}

func (p *redisProc) start(ctx context.Context, aof bool) error {
	host, port, _ := net.SplitHostPort(p.addr)
	appendOnly := "no"
	if aof {
		appendOnly = "yes"
	}
	p.cmd = exec.Command("redis-server", "--bind", host, "--port", port, "--dir", p.dir,
		"--logfile", filepath.Join(p.dir, "redis.log"), "--save", "", "--appendonly", appendOnly,
		"--daemonize", "no", "--protected-mode", "no")
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.done)
	rdb := redis.NewClient(&redis.Options{Addr: p.addr, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(30 * time.Second)
	for rdb.Ping(ctx).Err() != nil {
		if time.Now().After(deadline) {
			return errors.New("redis-server did not answer PING within 30s")
		}
		sleep(ctx, 50*time.Millisecond)
	}
	if !aof {
		return rdb.ConfigSet(ctx, "appendonly", "yes").Err()
	}
	return nil
}

func (p *redisProc) stop(sig syscall.Signal) {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

func (p *redisProc) kill() { p.stop(syscall.SIGKILL) }

// snapshot saves an RDB snapshot and keeps a copy for a later restart from it.
func (p *redisProc) snapshot(ctx context.Context, rdb *redis.Client) error {
	if err := rdb.Save(ctx).Err(); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(p.dir, "dump.rdb"))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(p.dir, "older.rdb"), b, 0o644)
}

// restart kills Redis and starts it again: keep keeps the append-only file (a restart with
// persistence), older starts from the older snapshot, neither starts empty.
func (p *redisProc) restart(ctx context.Context, keep, older bool) error {
	p.kill()
	if !keep {
		_ = os.RemoveAll(filepath.Join(p.dir, "appendonlydir"))
		_ = os.Remove(filepath.Join(p.dir, "dump.rdb"))
	}
	if older {
		b, err := os.ReadFile(filepath.Join(p.dir, "older.rdb"))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(p.dir, "dump.rdb"), b, 0o644); err != nil {
			return err
		}
		return p.start(ctx, false)
	}
	return p.start(ctx, true)
}
