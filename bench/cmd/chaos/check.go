package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"conferencego/bench/stack"
	"conferencego/syncer/changeevent"
)

// sample is the state of the system at one moment of a run.
type sample struct {
	At     time.Duration // since the run's start
	Lag    float64       // seconds: age of the oldest change the copy does not have yet
	Behind int           // conferences whose copy is behind
	Outbox int64
	Stream int64
}

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
