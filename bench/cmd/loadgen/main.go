// Command loadgen measures api-conference under load from a second process on loopback and
// puts the numbers next to a baseline measured in the same run: `pgbench -S` (read-only
// point selects) against the same Postgres. Machines here are shared and noisy, so only the
// ratio of the two means much.
//
// It creates a scratch database, starts the given api-conference binary on a free port
// against it, seeds it, runs each scenario for -duration with -concurrency workers, runs
// pgbench, prints a Markdown table, and removes everything it made.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"conferencego/bench/stack"
)

type options struct {
	server      string
	adminURL    string
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	seed        int
}

func main() {
	var o options
	flag.StringVar(&o.server, "server", "bin/api-conference", "api-conference binary to start")
	flag.StringVar(&o.adminURL, "admin-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "Postgres URL with the right to create databases")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each scenario is measured")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each scenario")
	flag.IntVar(&o.concurrency, "concurrency", 16, "concurrent clients, for the API and for pgbench")
	flag.IntVar(&o.seed, "conferences", 100, "conferences created before the read scenarios")
	flag.Parse()
	if o.duration <= 0 || o.concurrency < 1 || o.seed < 1 {
		fmt.Fprintln(os.Stderr, "loadgen: -duration, -concurrency and -conferences must be positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	db, err := stack.CreateDatabase(ctx, o.adminURL, "conferencego_bench_")
	if err != nil {
		return fmt.Errorf("-admin-url: %w", err)
	}
	defer func() {
		if err := db.Drop(); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
		}
	}()
	dbURL := db.URL

	addr, err := stack.FreeAddr()
	if err != nil {
		return err
	}
	server, err := stack.Start(ctx, stack.Spec{
		Name: o.server, Bin: o.server, Addr: addr, Output: os.Stderr, HealthTimeout: 20 * time.Second,
		Env: append(os.Environ(), "DATABASE_URL="+dbURL, "LOG_LEVEL=warn", "LOG_FORMAT=text"),
	})
	if err != nil {
		return fmt.Errorf("-server: %w", err)
	}
	defer server.Stop(15 * time.Second)
	base := server.URL()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency}}
	ids, err := seed(ctx, client, base, o.seed)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	location := ids[0]
	confIDs := ids[1:]

	scenarios := []scenario{
		{name: "GET /api/conferences/{id}/", do: func(c *http.Client, i int) (int, error) {
			return send(c, "GET", fmt.Sprintf("%s/api/conferences/%d/", base, confIDs[i%len(confIDs)]), nil)
		}},
		{name: fmt.Sprintf("GET /api/conferences/ (%d items)", min(len(confIDs), 100)), do: func(c *http.Client, _ int) (int, error) {
			return send(c, "GET", base+"/api/conferences/", nil)
		}},
		{name: "POST /api/conferences/", do: func(c *http.Client, i int) (int, error) {
			body := fmt.Sprintf(`{"name":"Load %d","starts":"2027-03-01","ends":"2027-03-03","max_presentations":5,"max_attendees":100,"location":%d}`, i, location)
			return send(c, "POST", base+"/api/conferences/", []byte(body))
		}},
	}
	var results []result
	for _, s := range scenarios {
		fmt.Fprintf(os.Stderr, "loadgen: %s ...\n", s.name)
		if _, err := s.drive(ctx, client, o.concurrency, o.warmup); err != nil {
			return err
		}
		r, err := s.drive(ctx, client, o.concurrency, o.duration)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	fmt.Fprintln(os.Stderr, "loadgen: pgbench -S ...")
	tps, err := pgbench(ctx, dbURL, o.concurrency, o.duration)
	if err != nil {
		return err
	}
	printTable(os.Stdout, o, results, tps)
	return nil
}

type scenario struct {
	name string
	do   func(c *http.Client, i int) (status int, err error)
}

type result struct {
	name     string
	requests int
	errors   int
	took     time.Duration
	lat      []time.Duration
}

// drive runs s with n workers for d and returns what happened. Any non-2xx answer counts as
// an error; a transport error stops the run.
func (s scenario) drive(ctx context.Context, c *http.Client, n int, d time.Duration) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu    sync.Mutex
		all   []time.Duration
		errs  int
		first error
		wg    sync.WaitGroup
		start = time.Now()
	)
	for w := range n {
		wg.Go(func() {
			var lat []time.Duration
			bad := 0
			for i := w; ctx.Err() == nil; i += n {
				t0 := time.Now()
				status, err := s.do(c, i)
				if err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						if first == nil {
							first = err
						}
						mu.Unlock()
					}
					break
				}
				lat = append(lat, time.Since(t0))
				if status < 200 || status > 299 {
					bad++
				}
			}
			mu.Lock()
			all = append(all, lat...)
			errs += bad
			mu.Unlock()
		})
	}
	wg.Wait()
	if first != nil {
		return result{}, fmt.Errorf("%s: %w", s.name, first)
	}
	slices.Sort(all)
	return result{name: s.name, requests: len(all), errors: errs, took: time.Since(start), lat: all}, nil
}

func send(c *http.Client, method, u string, body []byte) (int, error) {
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// seed creates one location and n conferences; it returns the location's id, then theirs.
func seed(ctx context.Context, c *http.Client, base string, n int) ([]int64, error) {
	post := func(path, body string) (int64, error) {
		req, err := http.NewRequestWithContext(ctx, "POST", base+path, bytes.NewReader([]byte(body)))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var out struct{ ID int64 }
		if resp.StatusCode != 201 {
			b, _ := io.ReadAll(resp.Body)
			return 0, fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, b)
		}
		return out.ID, json.NewDecoder(resp.Body).Decode(&out)
	}
	loc, err := post("/api/locations/", `{"name":"Bench Hall","city":"Austin","room_count":10,"state":"TX"}`)
	if err != nil {
		return nil, err
	}
	ids := []int64{loc}
	for i := range n {
		id, err := post("/api/conferences/", fmt.Sprintf(`{"name":"Seed %d","starts":"2027-03-01","ends":"2027-03-03","max_presentations":5,"max_attendees":100,"location":%d}`, i, loc))
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbench initialises pgbench's tables in the scratch database and runs its read-only
// select-only script with the same number of clients as the API scenarios.
func pgbench(ctx context.Context, dbURL string, clients int, d time.Duration) (float64, error) {
	if out, err := exec.CommandContext(ctx, "pgbench", "-i", "-q", "-s", "10", dbURL).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("pgbench -i: %v: %s", err, out)
	}
	out, err := exec.CommandContext(ctx, "pgbench", "-S", "-n", "-c", strconv.Itoa(clients), "-j", "2",
		"-T", strconv.Itoa(int(max(1, d.Seconds()))), dbURL).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench -S: %v: %s", err, out)
	}
	m := tpsRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench -S: no tps in its output: %s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

func pct(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[int(p*float64(len(lat)-1))]
}

func printTable(w io.Writer, o options, results []result, tps float64) {
	host, _ := os.Hostname()
	fmt.Fprintf(w, "\napi-conference under load: %d concurrent clients on loopback, %s per scenario, %d cores, host %s\n\n",
		o.concurrency, o.duration, runtime.NumCPU(), host)
	fmt.Fprintln(w, "| scenario | requests | req/s | p50 | p99 | non-2xx | req/s ÷ pgbench -S tps |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		rps := float64(r.requests) / r.took.Seconds()
		fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %d | %.3f |\n", r.name, r.requests, rps,
			pct(r.lat, 0.50).Round(time.Microsecond), pct(r.lat, 0.99).Round(time.Microsecond), r.errors, rps/tps)
	}
	fmt.Fprintf(w, "| pgbench -S (baseline, %d clients) | | %.0f | | | | 1.000 |\n", o.concurrency, tps)
}
