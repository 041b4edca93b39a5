package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// commitOptions are -commit's settings.
type commitOptions struct {
	on           bool
	writers      []int
	configs      []commitConfig
	repeat       int
	poll, linger time.Duration
}

// commitConfig is one way of running the sync path beside api-conference's writers: how
// api-conference notifies (OUTBOX_NOTIFY) and how the relay learns of rows.
type commitConfig struct {
	name         string
	notify       string // OUTBOX_NOTIFY: commit, after or off
	sync         bool   // false: the syncer is stopped (the baseline)
	poll, linger bool   // SYNC_OUTBOX_POLL, SYNC_RELAY_LINGER
	logical      bool   // the logical-decoding transport
}

const baselineConfig = "none"

func parseCommitConfigs(s string) ([]commitConfig, error) {
	var out []commitConfig
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		base, linger := strings.CutSuffix(part, "+linger")
		c := commitConfig{name: part, linger: linger, sync: true}
		switch base {
		case baselineConfig:
			c.notify, c.sync = "off", false
		case "commit", "after":
			c.notify = base
		case "poll":
			c.notify, c.poll = "off", true
		case "logical":
			c.notify, c.logical = "off", true
		default:
			return nil, fmt.Errorf("%q: want none, commit, after, poll or logical, the last four optionally with +linger", part)
		}
		if linger && !c.sync {
			return nil, fmt.Errorf("%q: without the syncer there is nothing to linger", part)
		}
		if seen[part] {
			return nil, fmt.Errorf("%q twice", part)
		}
		seen[part] = true
		out = append(out, c)
	}
	if !seen[baselineConfig] {
		return nil, fmt.Errorf("%q: the baseline, none, is needed for the ratios", s)
	}
	return out, nil
}

func parseWriters(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 || n > 512 {
			return nil, fmt.Errorf("%q: want numbers of writers from 1 to 512, like 1,8,32", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// env is what c sets, on top of -conference-env and -syncer-env.
func (c commitConfig) env(o options, slot string) (conference, syncer []string) {
	conference = append(slices.Clone(o.conferenceEnv), "OUTBOX_NOTIFY="+c.notify)
	syncer = slices.Clone(o.syncerEnv)
	if c.logical {
		conference, syncer = withTransport(conference, syncer, slot)
	}
	if c.poll {
		syncer = append(syncer, "SYNC_OUTBOX_POLL="+o.commit.poll.String())
	}
	if c.linger {
		syncer = append(syncer, "SYNC_RELAY_LINGER="+o.commit.linger.String())
	}
	return conference, syncer
}

// cell is what one configuration did at one number of writers, over every round.
type cell struct {
	lats, lags     []time.Duration // pooled over the rounds
	roundP50s      []time.Duration
	written, lost  int64
	failed         int64
	seconds        float64
	roundsMeasured int
}

// commitLatency measures the source's write latency, at the client, with the sync path
// stopped and with each configuration running, at each number of writers: closed-loop
// updates through api-conference's API, each writer on its own conferences, so that what
// differs is the commit and not row locks. Rounds alternate the order of the configurations
// and of the writer counts, so that a machine getting busier is not one configuration's fault.
func commitLatency(ctx context.Context, o options, out, progress io.Writer, logDir string) error {
	startedAt, loadStart := time.Now().UTC(), loadAvg()
	s, err := startStack(ctx, o, mode{kind: "push"}, logDir)
	if err != nil {
		return err
	}
	defer s.stop()
	pgCommit, redisRTT, err := floors(ctx, s.pool, o.redisURL, 300)
	if err != nil {
		return fmt.Errorf("measure floors: %w", err)
	}
	seed := newWriter(s.conference.URL(), 1)
	if err := seed.createLocation(ctx); err != nil {
		return err
	}
	for i := range o.initial {
		if err := seed.do(ctx, op{kind: opCreate, logical: i}); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	cells := map[string]*cell{}
	idle := map[string]idleCost{} // by configuration, measured once
	next := 0                     // update values go on rising across cells, so every update changes something
	configs, writers := slices.Clone(o.commit.configs), slices.Clone(o.commit.writers)
	for round := range o.commit.repeat {
		for _, c := range configs {
			confEnv, syncEnv := c.env(o, s.slot)
			if err := s.reconfigure(ctx, confEnv, syncEnv, c.sync); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			for _, n := range writers {
				key := fmt.Sprint(n, c.name)
				if cells[key] == nil {
					cells[key] = &cell{}
				}
				fmt.Fprintf(progress, "[commit] round %d: %s, %d writers, %s\n", round+1, c.name, n, o.duration)
				if err := measureCell(ctx, o, s, seed, c, n, &next, cells[key]); err != nil {
					return fmt.Errorf("%s, %d writers: %w", c.name, n, err)
				}
			}
			if _, done := idle[c.name]; c.sync && !done {
				if idle[c.name], err = measureIdle(ctx, s, 3*time.Second); err != nil {
					return fmt.Errorf("%s idle: %w", c.name, err)
				}
			}
		}
		slices.Reverse(configs)
		slices.Reverse(writers)
	}
	writeCommitTable(out, o, cells, idle, pgCommit, redisRTT, startedAt, loadStart, loadAvg())
	return nil
}

// measureCell runs n closed-loop writers for o.duration in configuration c and adds what it
// saw to cl: each write's latency, and with the syncer running each change's push lag.
func measureCell(ctx context.Context, o options, s *services, seed *writer, c commitConfig, n int, next *int, cl *cell) error {
	if c.sync {
		// What piled up while the syncer was stopped goes out before the clock starts.
		if _, err := awaitConverged(ctx, s.pool, o.drain); err != nil {
			return err
		}
	}
	if err := resetMeasurements(ctx, s.pool); err != nil {
		return err
	}
	w := newWriter(s.conference.URL(), n)
	w.location, w.ids = seed.location, seed.ids
	ops := make([]op, int(o.duration.Seconds()*4000)+1000) // more than this machine can write
	for i := range ops {
		ops[i] = op{kind: opUpdate, logical: i % o.initial, n: *next + i}
	}
	*next += len(ops)
	start := time.Now()
	w.until = start.Add(o.duration)
	w.run(ctx, ops, n, func() {})
	took := time.Since(start)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	lats := slices.Sorted(slices.Values(w.latencies))
	cl.lats = append(cl.lats, lats...)
	cl.roundP50s = append(cl.roundP50s, percentile(lats, .5))
	cl.written += w.written.Load()
	cl.failed += w.failed.Load()
	cl.seconds += took.Seconds()
	cl.roundsMeasured++
	if !c.sync {
		return nil
	}
	if _, err := awaitConverged(ctx, s.pool, o.drain); err != nil {
		return err
	}
	cs, err := changes(ctx, s.pool)
	if err != nil {
		return err
	}
	for _, ch := range cs {
		if ch.appliedAt == nil {
			cl.lost++
			continue
		}
		cl.lags = append(cl.lags, ch.lag())
	}
	return nil
}

func writeCommitTable(out io.Writer, o options, cells map[string]*cell, idle map[string]idleCost, pgCommit, redisRTT time.Duration, at time.Time, loadStart, loadEnd string) {
	floor := 2*pgCommit + redisRTT
	fmt.Fprintf(out, "Commit latency: %s, %d cores (nproc), load %s at the start and %s at the end; closed-loop updates through api-conference's API, "+
		"%s per cell, %d rounds in alternating order; floor (2 Postgres commits + 1 Redis round trip) %s ms. Poll %s, linger %s. Times in ms.\n\n",
		at.Format(time.RFC3339), runtime.NumCPU(), loadStart, loadEnd, o.duration, o.commit.repeat, ms3(floor), o.commit.poll, o.commit.linger)
	fmt.Fprintln(out, "| writers | configuration | writes/s | ÷ none | write p50 | ÷ none | write p99 | ÷ none | p50 per round | push lag p50 | p99 | p50 ÷ floor | p99 ÷ floor | lost | failed |")
	fmt.Fprintln(out, "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
	for _, n := range o.commit.writers {
		base := cells[fmt.Sprint(n, baselineConfig)]
		for _, c := range o.commit.configs {
			cl := cells[fmt.Sprint(n, c.name)]
			slices.Sort(cl.lats)
			slices.Sort(cl.lags)
			rate, baseRate := float64(cl.written)/cl.seconds, float64(base.written)/base.seconds
			p50, p99 := percentile(cl.lats, .5), percentile(cl.lats, .99)
			var rounds []string
			for _, d := range cl.roundP50s {
				rounds = append(rounds, ms(d))
			}
			lag50, lag99, r50, r99 := "–", "–", "–", "–"
			if c.sync {
				l50, l99 := percentile(cl.lags, .5), percentile(cl.lags, .99)
				lag50, lag99 = ms(l50), ms(l99)
				r50, r99 = ratio(l50, floor), ratio(l99, floor)
			}
			fmt.Fprintf(out, "| %d | %s | %.0f | %.2f | %s | %.2f | %s | %.2f | %s | %s | %s | %s | %s | %d | %d |\n", n, c.name, rate, rate/baseRate,
				ms(p50), float64(p50)/float64(percentile(base.lats, .5)), ms(p99), float64(p99)/float64(percentile(base.lats, .99)),
				strings.Join(rounds, " / "), lag50, lag99, r50, r99, cl.lost, cl.failed)
		}
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "Idle cost of each running configuration, over 3 s with no writes: the relay's statements and the CPU of the syncer and of its Postgres backends.")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| configuration | polls/s | claims/s | syncer CPU (ms/s) | its Postgres backends' CPU (ms/s) |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|")
	for _, c := range o.commit.configs {
		if ic, ok := idle[c.name]; ok {
			fmt.Fprintf(out, "| %s | %.0f | %.0f | %.1f | %.1f |\n", c.name, ic.polls, ic.claims, ic.syncerCPU, ic.backendCPU)
		}
	}
}

func ratio(d, floor time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(floor), 'f', 1, 64)
}

// loadAvg is the machine's 1, 5 and 15 minute load, as uptime shows it.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
