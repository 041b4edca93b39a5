package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type opKind int

const (
	opCreate opKind = iota
	opUpdate
	opDelete
)

// op is one scheduled write. Conferences are named by a logical number, the same in every
// mode, and mapped to their real ids as they are created.
type op struct {
	at      time.Duration
	kind    opKind
	logical int
	n       int // the op's index, which makes every update change something
}

// mix is the share of creates, updates and deletes.
type mix struct{ create, update, delete int }

func parseMix(s string) (mix, error) {
	var m mix
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 {
			return mix{}, fmt.Errorf("%q: want create=N,update=N,delete=N", s)
		}
		switch k {
		case "create":
			m.create = n
		case "update":
			m.update = n
		case "delete":
			m.delete = n
		default:
			return mix{}, fmt.Errorf("%q: unknown kind %q", s, k)
		}
	}
	if m.create+m.update+m.delete == 0 {
		return mix{}, fmt.Errorf("%q: all shares are zero", s)
	}
	return m, nil
}

// minLive keeps some conferences alive, so updates and deletes always have a target and the
// list a poller reads is never empty.
const minLive = 5

// plan schedules rate writes a second for d, from seed: the same writes at the same offsets
// for every mode. Conferences 0…initial-1 exist before it starts.
func plan(seed uint64, rate float64, d time.Duration, m mix, initial int) []op {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	live := make([]int, initial)
	for i := range live {
		live[i] = i
	}
	next := initial
	total := int(rate * d.Seconds())
	ops := make([]op, 0, total)
	for i := range total {
		o := op{at: time.Duration(float64(i) / rate * float64(time.Second)), n: i}
		r := rng.IntN(m.create + m.update + m.delete)
		switch {
		case r < m.create || len(live) == 0:
			o.kind, o.logical = opCreate, next
			live = append(live, next)
			next++
		case r < m.create+m.update || len(live) <= minLive:
			o.kind, o.logical = opUpdate, live[rng.IntN(len(live))]
		default:
			j := rng.IntN(len(live))
			o.kind, o.logical = opDelete, live[j]
			live[j] = live[len(live)-1]
			live = live[:len(live)-1]
		}
		ops = append(ops, o)
	}
	return ops
}

// writer performs writes through api-conference's public API.
type writer struct {
	base     string
	client   *http.Client
	location int64
	mu       sync.Mutex
	ids      map[int]int64 // logical → real id
	written  atomic.Int64
	failed   atomic.Int64
	lastErr  atomic.Value
	// latencies are the client-side times of the last run's successful writes, unsorted.
	latencies []time.Duration
	// until, if set, ends a run: no write starts after it, and those under way finish, so
	// that none is cut off after the source committed it.
	until time.Time
}

func newWriter(base string, workers int) *writer {
	return &writer{
		base:   base,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}},
		ids:    map[int]int64{},
	}
}

func (w *writer) send(ctx context.Context, method, path string, body any) ([]byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.base+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %d %.200s", method, path, resp.StatusCode, out)
	}
	return out, nil
}

func (w *writer) createLocation(ctx context.Context) error {
	out, err := w.send(ctx, "POST", "/api/locations/", map[string]any{"name": "Compare Hall", "city": "Austin", "room_count": 10, "state": "TX"})
	if err != nil {
		return err
	}
	var l struct{ ID int64 }
	if err := json.Unmarshal(out, &l); err != nil {
		return err
	}
	w.location = l.ID
	return nil
}

func (w *writer) do(ctx context.Context, o op) error {
	switch o.kind {
	case opCreate:
		out, err := w.send(ctx, "POST", "/api/conferences/", map[string]any{
			"name": fmt.Sprintf("Conference %d", o.logical), "starts": "2027-03-01", "ends": "2027-03-03",
			"max_presentations": 10, "max_attendees": 100, "location": w.location,
		})
		if err != nil {
			return err
		}
		var c struct{ ID int64 }
		if err := json.Unmarshal(out, &c); err != nil {
			return err
		}
		w.mu.Lock()
		w.ids[o.logical] = c.ID
		w.mu.Unlock()
	case opUpdate, opDelete:
		w.mu.Lock()
		id, ok := w.ids[o.logical]
		w.mu.Unlock()
		if !ok {
			return fmt.Errorf("conference %d was never created", o.logical)
		}
		path := fmt.Sprintf("/api/conferences/%d/", id)
		var err error
		if o.kind == opUpdate {
			// Unique per op within a run, so every update really changes the conference.
			_, err = w.send(ctx, "PUT", path, map[string]any{"max_attendees": 1000 + o.n%900_000})
		} else {
			_, err = w.send(ctx, "DELETE", path, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// run executes ops open-loop: each is released at its scheduled time, whether or not earlier
// ones have finished. Writes to one conference go to one worker, in order, so a delete never
// overtakes the update scheduled before it.
func (w *writer) run(ctx context.Context, ops []op, workers int, progress func()) {
	queues := make([]chan op, workers)
	lats := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan op, len(ops))
		wg.Go(func() {
			for o := range queues[i] {
				if ctx.Err() != nil || (!w.until.IsZero() && time.Now().After(w.until)) {
					continue // the run is over: drain the queue without writing
				}
				t := time.Now()
				err := w.do(ctx, o)
				if err == nil {
					lats[i] = append(lats[i], time.Since(t))
				}
				if err != nil {
					if ctx.Err() != nil {
						continue
					}
					w.failed.Add(1)
					w.lastErr.Store(err.Error())
					continue
				}
				w.written.Add(1)
			}
		})
	}
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for _, o := range ops {
		for wait := time.Until(start.Add(o.at)); wait > 0; wait = time.Until(start.Add(o.at)) {
			select {
			case <-ctx.Done():
				wait = 0
			case <-tick.C:
				progress()
			case <-time.After(wait):
			}
			if ctx.Err() != nil {
				break
			}
		}
		if ctx.Err() != nil {
			break
		}
		queues[o.logical%workers] <- o
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	w.latencies = slices.Concat(lats...)
}
