package main

import (
	"fmt"
	"image/color"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// report is the run's Markdown report: the settings, per mode the check, a table per fault
// kind and the processes' resources.
func report(cfg config, results []*result) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "# Chaos run\n\nDURATION=%s SEED=%d RATE=%g/s; %s, %d CPUs, GOOS %s; finished %s\n",
		cfg.Duration, cfg.Seed, cfg.Rate, host, runtime.NumCPU(), runtime.GOOS, time.Now().UTC().Format(time.RFC3339))
	for _, r := range results {
		verdict := "PASS"
		if !r.ok() {
			verdict = "FAIL"
		}
		fmt.Fprintf(&b, "\n## %s mode: %s\n\n", r.Mode, verdict)
		fmt.Fprintf(&b, "- writes: %d succeeded, %d failed, %d skipped (too many in flight)\n", r.Writes, r.WriteErrors, r.Skipped)
		fmt.Fprintf(&b, "- after healing: converged %v in %s; lost %d, stale %d, phantom %d", r.Converged, r.Took.Round(time.Millisecond), r.Lost, r.Stale, r.Phantom)
		if r.FirstDiff != "" {
			fmt.Fprintf(&b, " (%s)", r.FirstDiff)
		}
		fmt.Fprintf(&b, "\n- VO versions that went backwards between samples: %d\n", r.Backwards)
		if strings.HasPrefix(r.Mode, "push") {
			fmt.Fprintf(&b, "- stream at the end: %d events, %d duplicates (allowed: the apply is idempotent)\n", r.StreamLen, r.Duplicates)
		}
		if strings.HasPrefix(r.Mode, "push") {
			fmt.Fprintf(&b, "- peak outbox %d rows, peak stream %d entries\n", r.PeakOutbox, r.PeakStream)
		}
		b.WriteString("\n")
		b.WriteString("| fault | count | converge p50 | converge max | failed |\n|---|---:|---:|---:|---:|\n")
		byKind := map[string][]faultRun{}
		for _, f := range r.Faults {
			byKind[f.Kind] = append(byKind[f.Kind], f)
		}
		kinds := make([]string, 0, len(byKind))
		for k := range byKind {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			fs := byKind[k]
			ds := make([]time.Duration, 0, len(fs))
			failed := 0
			for _, f := range fs {
				ds = append(ds, f.Converge)
				if f.Failed {
					failed++
				}
			}
			slices.Sort(ds)
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %d |\n", k, len(fs), ds[(len(ds)-1)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond), failed)
		}
		b.WriteString("\n| process | RSS start | RSS end | goroutines start | goroutines end |\n|---|---:|---:|---:|---:|\n")
		for _, p := range r.Procs {
			fmt.Fprintf(&b, "| %s | %s | %s | %g | %g |\n", p.Name, mib(p.RSSStart), mib(p.RSSEnd), p.GoroutStart, p.GoroutEnd)
		}
		fmt.Fprintf(&b, "\n![lag over time, %s](lag-%s.png)\n", r.Mode, r.Mode)
	}
	return b.String()
}

func mib(n int64) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// plotLag plots the copy's lag over time, with a mark and a label at each fault.
func plotLag(r *result, path string) error {
	p := plot.New()
	p.Title.Text = "chaos, " + r.Mode + " mode: lag of the copy, faults marked"
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "age of the oldest change not yet copied (s)"
	p.Add(plotter.NewGrid())
	pts := make(plotter.XYs, 0, len(r.Samples))
	top := 1.0
	for _, s := range r.Samples {
		pts = append(pts, plotter.XY{X: s.At.Seconds(), Y: s.Lag})
		top = max(top, s.Lag)
	}
	if len(pts) > 0 {
		line, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		line.Width = vg.Points(1)
		p.Add(line)
	}
	if len(r.Faults) > 0 {
		marks := make(plotter.XYs, 0, len(r.Faults))
		labels := make([]string, 0, len(r.Faults))
		for i, f := range r.Faults {
			// Labels at three heights, so that neighbours do not overlap.
			marks = append(marks, plotter.XY{X: f.At.Seconds(), Y: top * (1.02 + 0.04*float64(i%3))})
			labels = append(labels, short(f.Kind))
		}
		sc, err := plotter.NewScatter(marks)
		if err != nil {
			return err
		}
		sc.Color = color.RGBA{R: 200, A: 255}
		p.Add(sc)
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: marks, Labels: labels})
		if err != nil {
			return err
		}
		for i := range lb.TextStyle {
			lb.TextStyle[i].Font.Size = vg.Points(6)
		}
		p.Add(lb)
	}
	return p.Save(12*vg.Inch, 5*vg.Inch, path)
}

// short is a fault's label on the plot.
func short(kind string) string {
	r := strings.NewReplacer("kill -9 ", "k9 ", "api-", "", "redis restarted ", "redis ", "postgres connections terminated", "pg term",
		"net: ", "", "from an older snapshot", "old snap", "with persistence", "aof", "connections ", "conn ")
	return r.Replace(kind)
}
