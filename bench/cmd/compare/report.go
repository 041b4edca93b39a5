package main

import (
	"encoding/csv"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// result is what one mode did.
type result struct {
	mode                            mode
	written, failed                 int64
	changes                         []change
	applied, skipped, lost, deletes int
	deletesPropagated               int
	lags                            []time.Duration // sorted
	drain                           time.Duration
	converged                       bool
	busy, idle                      load
	idleFor                         time.Duration
	pgCommit, redisRTT              time.Duration
}

func (r *result) summarise() {
	for _, c := range r.changes {
		if c.typ == "conference.deleted" {
			r.deletes++
		}
		switch c.status {
		case "applied":
			r.applied++
			r.lags = append(r.lags, c.lag())
			if c.typ == "conference.deleted" {
				r.deletesPropagated++
			}
		case "skipped":
			r.skipped++
		default:
			r.lost++
		}
	}
	slices.Sort(r.lags)
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
}

func perMinute(v float64, d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	return strconv.FormatFloat(v/d.Minutes(), 'f', 0, 64)
}

func humanBytes(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}

// writeTable prints the comparison as Markdown.
func writeTable(w io.Writer, o options, results []result) {
	host, _ := os.Hostname()
	fmt.Fprintf(w, "Workload: %.0f changes/s for %s (mix %s, seed %d, %d conferences to start with), then %s idle. "+
		"Machine: %d cores, host %s, Go %s; everything on one machine. Times in ms.\n\n",
		o.rate, o.duration, o.mixText, o.seed, o.initial, o.idle, runtime.NumCPU(), host, runtime.Version())
	fmt.Fprintln(w, "| mode | written | applied | lost | skipped | deletes propagated | lag p50 | p95 | p99 | max | converged after writes | list requests | list bytes | source rows read | idle requests/min | idle bytes/min | idle rows read/min |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		conv := ms(r.drain) + " ms"
		if !r.converged {
			conv = "**no** (" + ms(r.drain) + " ms)"
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d/%d | %s | %s | %s | %s | %s | %.0f | %s | %d | %s | %s | %s |\n",
			r.mode.name(), len(r.changes), r.applied, r.lost, r.skipped, r.deletesPropagated, r.deletes,
			ms(percentile(r.lags, .50)), ms(percentile(r.lags, .95)), ms(percentile(r.lags, .99)), ms(percentile(r.lags, 1)),
			conv, r.busy.requests, humanBytes(r.busy.bytes), r.busy.rowsRead,
			perMinute(r.idle.requests, r.idleFor), humanBytes(r.idle.bytes/max(r.idleFor.Minutes(), 1e-9)), perMinute(float64(r.idle.rowsRead), r.idleFor))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| mode | Postgres commit (floor) | Redis round trip (floor) | push floor (2 commits + 1 round trip) | lag p50 ÷ floor | lag p99 ÷ floor | write errors |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		floor := 2*r.pgCommit + r.redisRTT
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.1f | %.1f | %d |\n", r.mode.name(), ms3(r.pgCommit), ms3(r.redisRTT), ms3(floor),
			float64(percentile(r.lags, .5))/float64(floor), float64(percentile(r.lags, .99))/float64(floor), r.failed)
	}
}

func ms3(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64)
}

// writeCSV writes one row per change of every mode.
func writeCSV(path string, results []result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	_ = w.Write([]string{"mode", "conference_id", "version", "type", "occurred_at", "applied_at", "lag_ms", "status"})
	for _, r := range results {
		for _, c := range r.changes {
			applied, lag := "", ""
			if c.appliedAt != nil {
				applied = c.appliedAt.UTC().Format(time.RFC3339Nano)
				lag = strconv.FormatFloat(float64(c.lag())/float64(time.Millisecond), 'f', 3, 64)
			}
			_ = w.Write([]string{r.mode.name(), strconv.FormatInt(c.conferenceID, 10), strconv.FormatInt(c.version, 10), c.typ,
				c.occurredAt.UTC().Format(time.RFC3339Nano), applied, lag, c.status})
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return f.Close()
}

// writePlot draws each mode's lag distribution as a CDF over a logarithmic lag axis.
func writePlot(path string, results []result) error {
	p := plot.New()
	p.Title.Text = "Propagation lag, source commit to attendee commit"
	p.X.Label.Text = "lag (ms, log scale)"
	p.Y.Label.Text = "share of changes applied within"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	p.Legend.Top = false
	p.Legend.Left = false
	for i, r := range results {
		if len(r.lags) == 0 {
			continue
		}
		// At most ~2000 points per curve: every change is in the CSV; the picture needs less.
		step := max(1, len(r.lags)/2000)
		var pts plotter.XYs
		for j := 0; j < len(r.lags); j += step {
			pts = append(pts, plotter.XY{X: math.Max(float64(r.lags[j])/float64(time.Millisecond), 0.01), Y: float64(j+1) / float64(len(r.lags))})
		}
		last := r.lags[len(r.lags)-1]
		pts = append(pts, plotter.XY{X: math.Max(float64(last)/float64(time.Millisecond), 0.01), Y: 1})
		line, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		line.Color = plotColors[i%len(plotColors)]
		line.Width = vg.Points(2)
		p.Add(line)
		p.Legend.Add(r.mode.name(), line)
	}
	if err := p.Save(8*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return err
	}
	// The same picture as PNG, for viewers that do not show SVG.
	return p.Save(8*vg.Inch, 4.5*vg.Inch, strings.TrimSuffix(path, ".svg")+".png")
}

var plotColors = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}
