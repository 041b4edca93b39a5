package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"conferencego/bench/stack"
)

// step is one open-loop push run at a fixed rate.
type step struct {
	rate        float64       // offered
	achieved    float64       // changes the source committed per second
	slowed      bool          // the source could not take the offered rate
	early, late time.Duration // lag p50 of the first and the last third of the writes
	p99         time.Duration
	drain       time.Duration
	sustained   bool
}

// capacity answers two questions on one push stack: how fast api-conference alone accepts
// the workload's writes (closed loop, the syncer stopped), and the highest rate at which push
// keeps up (open loop, lag not growing), as a share of the first.
func capacity(ctx context.Context, o options, out, progress io.Writer, logDir string) error {
	m, ok := firstPush(o.modes)
	if !ok {
		m = mode{kind: "push"}
	}
	s, err := startStack(ctx, o, m, logDir)
	if err != nil {
		return err
	}
	defer s.stop()
	w := newWriter(s.conference.URL(), o.workers)
	if err := w.createLocation(ctx); err != nil {
		return err
	}
	for i := range o.initial {
		if err := w.do(ctx, op{kind: opCreate, logical: i}); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
	}
	if _, err := awaitConverged(ctx, s.pool, o.drain); err != nil {
		return err
	}

	// api-conference alone: stop the syncer, release every write at once, o.workers at a time.
	s.syncer.Stop(15 * time.Second)
	fmt.Fprintf(progress, "[capacity] api-conference alone, %d writers, closed loop, %s\n", o.workers, o.duration)
	alone := newWriter(s.conference.URL(), o.workers)
	alone.location = w.location
	alone.ids = w.ids
	ops := closedLoopPlan(o)
	ctxAlone, cancel := context.WithTimeout(ctx, o.duration)
	start := time.Now()
	alone.run(ctxAlone, ops, o.workers, func() {})
	cancel()
	took := time.Since(start)
	aloneRate := float64(alone.written.Load()) / took.Seconds()
	fmt.Fprintf(progress, "[capacity] api-conference alone accepted %.0f writes/s (%d failed)\n", aloneRate, alone.failed.Load())
	if alone.written.Load() == 0 {
		msg, _ := alone.lastErr.Load().(string)
		return fmt.Errorf("api-conference accepted no write: %s", msg)
	}

	// Bring the copy level again with a fresh syncer, then step the push rate up.
	if s.syncer, err = s.launch(ctx, stack.Syncer, s.syncerEnv...); err != nil {
		return err
	}
	if _, err := awaitConverged(ctx, s.pool, o.drain); err != nil {
		return fmt.Errorf("after restarting the syncer: %w", err)
	}
	var steps []step
	next := len(ops) // update values continue where the closed loop stopped
	for _, share := range []float64{0.5, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5} {
		rate := aloneRate * share
		st, err := pushStep(ctx, o, s, w, rate, &next, progress)
		if err != nil {
			return err
		}
		steps = append(steps, st)
		if !st.sustained || st.slowed {
			break // push fell behind, or api-conference itself could take no more
		}
	}
	best := 0.0
	for _, st := range steps {
		if st.sustained && st.achieved > best {
			best = st.achieved
		}
	}
	fmt.Fprintf(out, "\nPush capacity (%s): api-conference alone accepted **%.0f writes/s** (closed loop, %d writers, syncer stopped). "+
		"Highest sustained push rate: **%.0f changes/s = %.0f%%** of that.\n\n", m.name(), aloneRate, o.workers, best, 100*best/aloneRate)
	fmt.Fprintln(out, "| offered (changes/s) | committed at the source (changes/s) | share of api-conference alone | lag p50, first third (ms) | lag p50, last third (ms) | lag p99 (ms) | caught up after the writes (ms) | push kept up |")
	fmt.Fprintln(out, "|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, st := range steps {
		fmt.Fprintf(out, "| %.0f | %.0f | %.0f%% | %s | %s | %s | %s | %v |\n", st.rate, st.achieved, 100*st.achieved/aloneRate,
			ms(st.early), ms(st.late), ms(st.p99), ms(st.drain), yesNo(st.sustained))
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

// closedLoopPlan is updates only, all due at once: each writer takes its next as soon as its
// last is answered. Updates keep the table's size, so every step measures the same work.
func closedLoopPlan(o options) []op {
	n := int(o.duration.Seconds() * 5000) // more than any machine here can do in the time
	ops := make([]op, n)
	for i := range ops {
		ops[i] = op{kind: opUpdate, logical: i % o.initial, n: i}
	}
	return ops
}

// pushStep writes updates at rate for o.duration and measures whether the copy keeps up.
func pushStep(ctx context.Context, o options, s *services, w *writer, rate float64, next *int, progress io.Writer) (step, error) {
	st := step{rate: rate}
	if err := resetMeasurements(ctx, s.pool); err != nil {
		return st, err
	}
	n := int(rate * o.duration.Seconds())
	ops := make([]op, n)
	defer func() { *next += n }()
	for i := range ops {
		ops[i] = op{at: time.Duration(float64(i) / rate * float64(time.Second)), kind: opUpdate, logical: i % o.initial, n: *next + i}
	}
	w.written.Store(0)
	w.failed.Store(0)
	fmt.Fprintf(progress, "[capacity] push at %.0f changes/s for %s\n", rate, o.duration)
	w.run(ctx, ops, o.workers, func() {})
	end := time.Now()
	if _, err := awaitConverged(ctx, s.pool, o.drain); err != nil {
		return st, err
	}
	st.drain = time.Since(end)
	cs, err := changes(ctx, s.pool)
	if err != nil {
		return st, err
	}
	if len(cs) > 1 {
		span := cs[len(cs)-1].occurredAt.Sub(cs[0].occurredAt)
		st.achieved = float64(len(cs)-1) / span.Seconds()
		st.slowed = st.achieved < 0.95*rate
	}
	var early, late, all []time.Duration
	for i, c := range cs {
		if c.appliedAt == nil {
			continue
		}
		all = append(all, c.lag())
		switch {
		case i < len(cs)/3:
			early = append(early, c.lag())
		case i >= 2*len(cs)/3:
			late = append(late, c.lag())
		}
	}
	slices.Sort(early)
	slices.Sort(late)
	slices.Sort(all)
	st.early, st.late, st.p99 = percentile(early, .5), percentile(late, .5), percentile(all, .99)
	complete := len(all) == len(cs) && len(cs) > 0
	// Keeping up: every change arrived, the lag at the end is not far above the lag at the
	// start, and the copy is level within a second of the last write.
	st.sustained = complete && st.late <= 2*st.early+5*time.Millisecond && st.drain < time.Second
	fmt.Fprintf(progress, "[capacity]   source committed %.0f/s; lag p50 %s → %s ms, caught up %s ms after; push kept up: %v\n",
		st.achieved, ms(st.early), ms(st.late), ms(st.drain), st.sustained)
	return st, nil
}
