// Command loadgen measures api-conference under load from a second process on loopback, each
// operation beside a floor measured in the same run on the same machine:
//
//   - pgxbaseline (bench/cmd/pgxbaseline), a minimal net/http + pgx/v5 server doing the same
//     SELECT, the same page of rows, and each write as one statement with its outbox row;
//   - `pgbench -S` (read-only point selects) against the same Postgres.
//
// Machines here are shared and noisy, so only the ratios of one run mean much.
//
// It creates a scratch database and starts the given api-conference binary on it, which runs
// the service's migrations; then it starts the baseline binary on the same database, so both
// read and write the very same tables (schema "conference"), rows, indexes and triggers. It
// seeds the database through api-conference, runs each operation for -duration with
// -concurrency clients against api-conference and against the baseline, one right after the
// other (-rounds times, alternating which goes first), runs pgbench,
// prints a Markdown table, writes it to -out, and removes everything it made.
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
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"conferencego/bench/stack"
)

type options struct {
	server      string
	baseline    string
	adminURL    string
	out         string
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	seed        int
	rounds      int
}

func main() {
	var o options
	flag.StringVar(&o.server, "server", "bin/api-conference", "api-conference binary to start")
	flag.StringVar(&o.baseline, "baseline", "bin/pgxbaseline", "pgxbaseline binary to start (go build ./bench/cmd/pgxbaseline)")
	flag.StringVar(&o.adminURL, "admin-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "Postgres URL with the right to create databases")
	flag.StringVar(&o.out, "out", "out/bench.md", "file the Markdown report is written to")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each operation is measured, on each server")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each measurement")
	flag.IntVar(&o.concurrency, "concurrency", 16, "concurrent clients, for the API and for pgbench")
	flag.IntVar(&o.seed, "conferences", 100, "conferences created before the measurements (the list reads the first 100)")
	flag.IntVar(&o.rounds, "rounds", 1, "times each operation is measured on each server, alternating which goes first; the numbers pool them")
	flag.Parse()
	if o.duration <= 0 || o.warmup < 0 || o.concurrency < 1 || o.seed < 1 || o.rounds < 1 {
		fmt.Fprintln(os.Stderr, "loadgen: -duration, -concurrency, -conferences and -rounds must be positive, -warmup not negative")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// machine is what the report says about where and when it was measured.
type machine struct {
	date     time.Time
	host     string
	cpus     int
	loadavg  string // /proc/loadavg's first three fields when the run started
	loadEnd  string // and when it ended
	postgres string
}

func startMachine() machine {
	m := machine{date: time.Now().UTC(), cpus: runtime.NumCPU(), loadavg: loadAverage()}
	m.host, _ = os.Hostname()
	return m
}

// loadAverage is the 1, 5 and 15 minute load averages (Linux), or "unknown".
func loadAverage() string {
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			return strings.Join(f[:3], " ")
		}
	}
	return "unknown"
}

func run(ctx context.Context, o options, stdout io.Writer) error {
	m := startMachine() // before this run adds load of its own
	db, err := stack.CreateDatabase(ctx, o.adminURL, "conferencego_bench_")
	if err != nil {
		return fmt.Errorf("-admin-url: %w", err)
	}
	defer func() {
		if err := db.Drop(); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
		}
	}()
	if m.postgres, err = serverVersion(ctx, db.URL); err != nil {
		return err
	}

	// api-conference first: it migrates the scratch database, which the baseline then shares.
	ours, err := start(ctx, "api-conference", o.server, db.URL)
	if err != nil {
		return fmt.Errorf("-server: %w", err)
	}
	defer ours.Stop(15 * time.Second)
	floor, err := start(ctx, "pgxbaseline", o.baseline, db.URL)
	if err != nil {
		return fmt.Errorf("-baseline: %w", err)
	}
	defer floor.Stop(15 * time.Second)

	newClient := func() *http.Client {
		return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency}}
	}
	clients := [2]*http.Client{newClient(), newClient()}
	servers := [2]*stack.Process{ours, floor}
	ids, err := seed(ctx, clients[0], ours.URL(), o.seed)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}

	rows, err := measure(ctx, o, operations(ids[0], ids[1:]), clients, servers)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "loadgen: pgbench -S ...")
	tps, err := pgbench(ctx, db.URL, o.concurrency, o.duration)
	if err != nil {
		return err
	}
	m.loadEnd = loadAverage()
	var report bytes.Buffer
	writeReport(&report, o, m, rows, tps)
	if _, err := stdout.Write(report.Bytes()); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return fmt.Errorf("-out: %w", err)
	}
	if err := os.WriteFile(o.out, report.Bytes(), 0o644); err != nil {
		return fmt.Errorf("-out: %w", err)
	}
	fmt.Fprintln(os.Stderr, "loadgen: written to", o.out)
	return nil
}

func start(ctx context.Context, name, bin, dbURL string) (*stack.Process, error) {
	addr, err := stack.FreeAddr()
	if err != nil {
		return nil, err
	}
	return stack.Start(ctx, stack.Spec{
		Name: name, Bin: bin, Addr: addr, Output: os.Stderr, HealthTimeout: 20 * time.Second,
		Env: append(os.Environ(), "DATABASE_URL="+dbURL, "LOG_LEVEL=warn", "LOG_FORMAT=text"),
	})
}

func serverVersion(ctx context.Context, dbURL string) (string, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", fmt.Errorf("connect to the scratch database: %w", err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "", fmt.Errorf("postgres version: %w", err)
	}
	return v, nil
}

// operation is one request kind; req returns the method, path and body of request i.
type operation struct {
	name string
	req  func(i int) (method, path string, body []byte)
}

type result struct {
	requests int
	errors   int
	took     time.Duration
	lat      []time.Duration
}

func (r result) rps() float64 { return float64(r.requests) / r.took.Seconds() }

// add pools two measurements of one operation on one server.
func (r result) add(o result) result {
	lat := append(append([]time.Duration(nil), r.lat...), o.lat...)
	slices.Sort(lat)
	return result{requests: r.requests + o.requests, errors: r.errors + o.errors, took: r.took + o.took, lat: lat}
}

// row is one operation measured on api-conference (0) and on the baseline (1).
type row struct {
	name    string
	results [2]result
}

// drive runs op against base with n workers for d and returns what happened. Any non-2xx
// answer counts as an error; a transport error stops the run.
func (op operation) drive(ctx context.Context, c *http.Client, base string, seq *atomic.Int64, n int, d time.Duration) (result, error) {
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
	for range n {
		wg.Go(func() {
			var lat []time.Duration
			bad := 0
			for ctx.Err() == nil {
				method, path, body := op.req(int(seq.Add(1)))
				t0 := time.Now()
				status, err := send(c, method, base+path, body)
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
		return result{}, fmt.Errorf("%s: %w", op.name, first)
	}
	slices.Sort(all)
	return result{requests: len(all), errors: errs, took: time.Since(start), lat: all}, nil
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
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return 0, fmt.Errorf("POST %s: %w", path, err)
		}
		if out.ID <= 0 {
			return 0, fmt.Errorf("POST %s: no id in the answer", path)
		}
		return out.ID, nil
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

// writeReport writes the Markdown report: the machine and the date, then per operation
// api-conference's and the baseline's throughput and latency and their ratio, then pgbench.
func writeReport(w io.Writer, o options, m machine, rows []row, tps float64) {
	fmt.Fprintf(w, "\n## task bench, %s\n\n", m.date.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "Machine: %s, nproc %d, load average %s at the start and %s at the end; Postgres %s. %d concurrent clients from a second process on loopback, %s per operation and server after %s of warm-up, %d round(s) alternating which server goes first; ours is api-conference, pgx is bench/cmd/pgxbaseline on the same database.\n\n",
		m.host, m.cpus, m.loadavg, m.loadEnd, m.postgres, o.concurrency, o.duration, o.warmup, o.rounds)
	fmt.Fprintln(w, "| operation | ours req/s | ours p50 | ours p99 | pgx req/s | pgx p50 | pgx p99 | ours ÷ pgx | non-2xx ours/pgx |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		a, b := r.results[0], r.results[1]
		ratio := "n/a"
		if b.rps() > 0 {
			ratio = fmt.Sprintf("%.2f×", a.rps()/b.rps())
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %.0f | %s | %s | %s | %d/%d |\n", r.name,
			a.rps(), ms(pct(a.lat, 0.50)), ms(pct(a.lat, 0.99)),
			b.rps(), ms(pct(b.lat, 0.50)), ms(pct(b.lat, 0.99)), ratio, a.errors, b.errors)
	}
	fmt.Fprintf(w, "| pgbench -S (tps, %d clients, -j 2) | | | | %.0f | | | | |\n", o.concurrency, tps)
}

// ms renders a latency in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
