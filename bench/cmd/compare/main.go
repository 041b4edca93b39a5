// Command compare measures push against pull on one identical workload, and writes what it
// found as a Markdown table, a CSV of every change's lag and a plot of the lag distributions.
//
// For each mode it starts the three real binaries on a fresh database and fresh stream names,
// creates some conferences, drives an open-loop, seeded mix of creates, updates and deletes
// through api-conference's API, waits until api-attendee's copy equals the source, then leaves
// the system idle to see what syncing costs when nothing changes. Triggers it adds to its own
// scratch database record when each change was written at the source and when the copy
// caught up, from the one Postgres clock both services use, for every change: no sampling.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type options struct {
	rate                          float64
	duration, idle, drain, settle time.Duration
	mixText                       string
	mix                           mix
	modes                         []mode
	capacity                      bool
	seed                          uint64
	initial, workers              int
	out, binDir                   string
	adminURL, redisURL            string
	// syncerEnv and conferenceEnv (-syncer-env, -conference-env) go last into those
	// processes' environments, over the stack's own settings.
	syncerEnv, conferenceEnv []string
	commit                   commitOptions
}

// mode is push on one of its two transports, or pull with a poll interval, following the
// change feed or (list) polling the whole list the seed's way.
type mode struct {
	kind     string
	interval time.Duration
	list     bool
	logical  bool // push on the logical-decoding transport (OUTBOX_TRANSPORT=logical)
}

func (m mode) name() string {
	switch {
	case m.kind == "pull" && m.list:
		return "pull (list) " + m.interval.String()
	case m.kind == "pull":
		return "pull " + m.interval.String()
	case m.logical:
		return "push (logical)"
	}
	return m.kind
}

func parseModes(s string) ([]mode, error) {
	var out []mode
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		switch {
		case part == "push":
			out = append(out, mode{kind: "push"})
		case part == "push-logical":
			out = append(out, mode{kind: "push", logical: true})
		case strings.HasPrefix(part, "pull:"), strings.HasPrefix(part, "list:"):
			kind, interval, _ := strings.Cut(part, ":")
			d, err := time.ParseDuration(interval)
			if err != nil || d < 10*time.Millisecond {
				return nil, fmt.Errorf("%q: want %s:<interval of at least 10ms>", part, kind)
			}
			out = append(out, mode{kind: "pull", interval: d, list: kind == "list"})
		default:
			return nil, fmt.Errorf("%q: want push, push-logical, pull:<interval> (the change feed) or list:<interval> (the whole list)", part)
		}
	}
	return out, nil
}

func main() {
	var o options
	var modes string
	flag.Float64Var(&o.rate, "rate", 200, "changes per second, scheduled by time (open loop)")
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "how long changes are written")
	flag.DurationVar(&o.idle, "idle", 12*time.Second, "idle stretch after the copy caught up, to measure the cost of syncing nothing")
	flag.DurationVar(&o.settle, "settle", 11*time.Second, "wait before the idle stretch: Postgres backends report table statistics up to 10 s late")
	flag.DurationVar(&o.drain, "drain-timeout", 60*time.Second, "how long to wait for the copy to catch up after the writes")
	flag.StringVar(&o.mixText, "mix", "create=20,update=70,delete=10", "shares of creates, updates and deletes")
	flag.StringVar(&modes, "modes", "push,push-logical,pull:1s,list:1s,pull:5s", "modes to run, in order: push (the outbox table), push-logical (logical-decoding messages), "+
		"pull:<interval> (follows the change feed), list:<interval> (polls the whole list); -capacity measures each push mode")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the workload (the same for every mode)")
	flag.IntVar(&o.initial, "initial", 100, "conferences created before measuring")
	flag.IntVar(&o.workers, "workers", 32, "concurrent writers")
	flag.StringVar(&o.out, "out", "out/compare", "folder for compare.md, lags.csv and lags.svg")
	flag.StringVar(&o.binDir, "bin", "bin", "folder with the api-conference, api-attendee and syncer binaries")
	flag.StringVar(&o.adminURL, "admin-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "Postgres URL allowed to create databases")
	flag.BoolVar(&o.capacity, "capacity", false, "instead of comparing modes, find the highest rate push sustains, next to what api-conference alone accepts")
	flag.StringVar(&o.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis for the stream (each mode uses fresh stream names)")
	var syncerEnv, conferenceEnv, writersList, configs string
	flag.StringVar(&syncerEnv, "syncer-env", "", "extra syncer settings, KEY=V,KEY=V (e.g. SYNC_OUTBOX_POLL=2ms,SYNC_RELAY_LINGER=500us), in every mode and run")
	flag.StringVar(&conferenceEnv, "conference-env", "", "extra api-conference settings, KEY=V,KEY=V (e.g. OUTBOX_NOTIFY=off)")
	flag.BoolVar(&o.commit.on, "commit", false, "instead of comparing modes, measure api-conference's write latency with the sync path stopped and with each of -commit-configs, "+
		"at each of -writers-list (closed loop, -duration each, -repeat rounds in alternating order)")
	flag.StringVar(&writersList, "writers-list", "1,8,32", "with -commit: the numbers of concurrent closed-loop writers")
	flag.StringVar(&configs, "commit-configs", "none,commit,after,poll,poll+linger,logical", "with -commit: none (syncer stopped, OUTBOX_NOTIFY=off), "+
		"commit and after (OUTBOX_NOTIFY=commit or after, LISTEN relay), poll (OUTBOX_NOTIFY=off, SYNC_OUTBOX_POLL=-poll), "+
		"logical (the logical-decoding transport); +linger adds SYNC_RELAY_LINGER=-linger")
	flag.IntVar(&o.commit.repeat, "repeat", 2, "with -commit: rounds, each in the reverse order of the last")
	flag.DurationVar(&o.commit.poll, "poll", 2*time.Millisecond, "with -commit: SYNC_OUTBOX_POLL of the poll configurations")
	flag.DurationVar(&o.commit.linger, "linger", 500*time.Microsecond, "with -commit: SYNC_RELAY_LINGER of the +linger configurations")
	flag.Parse()

	var err error
	if o.mix, err = parseMix(o.mixText); err != nil {
		fail(fmt.Errorf("-mix %w", err))
	}
	if o.modes, err = parseModes(modes); err != nil {
		fail(fmt.Errorf("-modes %w", err))
	}
	if o.syncerEnv, err = parseEnv(syncerEnv); err != nil {
		fail(fmt.Errorf("-syncer-env %w", err))
	}
	if o.conferenceEnv, err = parseEnv(conferenceEnv); err != nil {
		fail(fmt.Errorf("-conference-env %w", err))
	}
	if o.commit.writers, err = parseWriters(writersList); err != nil {
		fail(fmt.Errorf("-writers-list %w", err))
	}
	if o.commit.configs, err = parseCommitConfigs(configs); err != nil {
		fail(fmt.Errorf("-commit-configs %w", err))
	}
	if o.commit.repeat < 1 {
		fail(errors.New("-repeat must be at least 1"))
	}
	if o.rate <= 0 || o.duration <= 0 || o.idle < 0 || o.settle < 0 || o.initial < minLive || o.workers < 1 {
		fail(fmt.Errorf("-rate and -duration must be positive, -idle and -settle not negative, -initial at least %d, -workers at least 1", minLive))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fail(err)
	}
}

// parseEnv reads KEY=V,KEY=V; an empty string is no settings.
func parseEnv(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if k, _, ok := strings.Cut(part, "="); !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("%q: want KEY=VALUE,KEY=VALUE", part)
		}
		out = append(out, part)
	}
	return out, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "compare:", err)
	os.Exit(1)
}

func run(ctx context.Context, o options, stdout, progress io.Writer) error {
	for _, bin := range []string{"api-conference", "api-attendee", "syncer"} {
		if _, err := os.Stat(filepath.Join(o.binDir, bin)); err != nil {
			return fmt.Errorf("-bin: %w (build them with: go tool task build)", err)
		}
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	logDir := filepath.Join(o.out, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	remove, err := logicalServer(ctx, &o, progress)
	if err != nil {
		return err
	}
	defer remove()
	if o.commit.on {
		var report strings.Builder
		if err := commitLatency(ctx, o, &report, progress, logDir); err != nil {
			return fmt.Errorf("commit: %w (logs in %s)", err, logDir)
		}
		fmt.Fprint(stdout, report.String())
		return os.WriteFile(filepath.Join(o.out, "commit.md"), []byte(report.String()), 0o644)
	}
	if o.capacity {
		// Each push mode of -modes in turn (on the same server), each on a stack of its own.
		var report strings.Builder
		for _, m := range o.modes {
			if m.kind != "push" {
				continue
			}
			one := o
			one.modes = []mode{m}
			if err := capacity(ctx, one, &report, progress, logDir); err != nil {
				return fmt.Errorf("capacity of %s: %w (logs in %s)", m.name(), err, logDir)
			}
		}
		fmt.Fprint(stdout, report.String())
		return os.WriteFile(filepath.Join(o.out, "capacity.md"), []byte(report.String()), 0o644)
	}
	ops := plan(o.seed, o.rate, o.duration, o.mix, o.initial)
	var results []result
	for _, m := range o.modes {
		r, err := runMode(ctx, o, m, ops, logDir, progress)
		if err != nil {
			return fmt.Errorf("%s: %w (logs in %s)", m.name(), err, logDir)
		}
		results = append(results, r)
	}
	var table strings.Builder
	writeTable(&table, o, results)
	fmt.Fprint(stdout, table.String())
	if err := os.WriteFile(filepath.Join(o.out, "compare.md"), []byte(table.String()), 0o644); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(o.out, "lags.csv"), results); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	if err := writePlot(filepath.Join(o.out, "lags.svg"), results); err != nil {
		return fmt.Errorf("write plot: %w", err)
	}
	fmt.Fprintf(progress, "compare: wrote compare.md, lags.csv, lags.svg and lags.png in %s\n", o.out)
	var lost []string
	for _, r := range results {
		if r.lost > 0 || !r.converged {
			lost = append(lost, r.mode.name())
		}
	}
	if len(lost) > 0 {
		return fmt.Errorf("changes were lost or the copy did not converge in: %s", strings.Join(lost, ", "))
	}
	return nil
}

func runMode(ctx context.Context, o options, m mode, ops []op, logDir string, progress io.Writer) (result, error) {
	r := result{mode: m}
	fmt.Fprintf(progress, "[%s] starting the three services\n", m.name())
	s, err := startStack(ctx, o, m, logDir)
	if err != nil {
		return r, err
	}
	defer s.stop()

	if r.pgCommit, r.redisRTT, err = floors(ctx, s.pool, o.redisURL, 300); err != nil {
		return r, fmt.Errorf("measure floors: %w", err)
	}
	w := newWriter(s.conference.URL(), o.workers)
	if err := w.createLocation(ctx); err != nil {
		return r, err
	}
	for i := range o.initial {
		if err := w.do(ctx, op{kind: opCreate, logical: i}); err != nil {
			return r, fmt.Errorf("seed: %w", err)
		}
	}
	if _, err := awaitConverged(ctx, s.pool, o.drain); err != nil {
		return r, fmt.Errorf("seed did not reach api-attendee: %w", err)
	}
	if err := resetMeasurements(ctx, s.pool); err != nil {
		return r, err
	}

	before, err := scrapeLoad(ctx, s.conference.URL(), s.pool)
	if err != nil {
		return r, err
	}
	start := time.Now()
	w.run(ctx, ops, o.workers, func() {
		fmt.Fprintf(progress, "[%s] %4.0fs/%s written %d, failed %d\n", m.name(), time.Since(start).Seconds(), o.duration, w.written.Load(), w.failed.Load())
	})
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	r.written, r.failed = w.written.Load(), w.failed.Load()
	if r.failed > 0 {
		msg, _ := w.lastErr.Load().(string)
		fmt.Fprintf(progress, "[%s] %d writes failed; the last: %s\n", m.name(), r.failed, msg)
	}
	writesEnd := time.Now()
	r.drain, err = awaitConverged(ctx, s.pool, o.drain)
	r.converged = err == nil
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(progress, "[%s] %v\n", m.name(), err)
	}
	r.drain = time.Since(writesEnd)
	fmt.Fprintf(progress, "[%s] caught up %s after the last write; settling %s, then idle for %s\n", m.name(), r.drain.Round(time.Millisecond), o.settle, o.idle)
	if err := sleep(ctx, o.settle); err != nil {
		return r, err
	}
	idleStart, err := scrapeLoad(ctx, s.conference.URL(), s.pool)
	if err != nil {
		return r, err
	}
	r.busy = idleStart.minus(before)
	if err := sleep(ctx, o.idle); err != nil {
		return r, err
	}
	idleEnd, err := scrapeLoad(ctx, s.conference.URL(), s.pool)
	if err != nil {
		return r, err
	}
	r.idle, r.idleFor = idleEnd.minus(idleStart), o.idle
	if r.changes, err = changes(ctx, s.pool); err != nil {
		return r, err
	}
	r.summarise()
	fmt.Fprintf(progress, "[%s] %d changes, %d applied, %d lost, lag p50 %s p99 %s\n", m.name(), len(r.changes), r.applied, r.lost,
		ms(percentile(r.lags, .5)), ms(percentile(r.lags, .99)))
	return r, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
