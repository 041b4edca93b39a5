package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// apiClient writes to api-conference through its public HTTP API.
type apiClient struct {
	base string
	http *http.Client
}

func newAPIClient(base string) *apiClient {
	return &apiClient{base: base, http: &http.Client{Timeout: 20 * time.Second}}
}

// do sends body as JSON and decodes a 2xx answer into out; anything else is an error.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

type created struct {
	ID      int64 `json:"id"`
	Version int64 `json:"version"`
}

func (c *apiClient) createLocation(ctx context.Context, name, city, state string) (int64, error) {
	var out created
	err := c.do(ctx, http.MethodPost, "/api/locations/",
		map[string]any{"name": name, "city": city, "room_count": 10, "state": state}, &out)
	return out.ID, err
}

func (c *apiClient) renameLocation(ctx context.Context, id int64, name string) error {
	return c.do(ctx, http.MethodPut, "/api/locations/"+strconv.FormatInt(id, 10)+"/", map[string]any{"name": name}, nil)
}

func (c *apiClient) createConference(ctx context.Context, name string, starts time.Time, days, maxAttendees int, location int64) (created, error) {
	var out created
	err := c.do(ctx, http.MethodPost, "/api/conferences/", map[string]any{
		"name": name, "starts": starts.Format(time.RFC3339), "ends": starts.AddDate(0, 0, days).Format(time.RFC3339),
		"max_presentations": 5, "max_attendees": maxAttendees, "location": location,
	}, &out)
	return out, err
}

// updateConference sends a PUT with the fields in patch; it must change something, or no
// version is made.
func (c *apiClient) updateConference(ctx context.Context, id int64, patch map[string]any) (created, error) {
	var out created
	err := c.do(ctx, http.MethodPut, "/api/conferences/"+strconv.FormatInt(id, 10)+"/", patch, &out)
	return out, err
}

func (c *apiClient) deleteConference(ctx context.Context, id int64) error {
	return c.do(ctx, http.MethodDelete, "/api/conferences/"+strconv.FormatInt(id, 10)+"/", nil, nil)
}

// workload is a seeded random mix of creates, updates and deletes of conferences (and now and
// then a location rename, which gives every conference there a new version) through the API.
// It remembers every conference it created, for the projection check.
type workload struct {
	t         *testing.T
	api       *apiClient
	seed      int64
	locations []int64
	// noRenames leaves locations alone. A rename gives every conference there a new version
	// and event, which heals any lost event of theirs: a test of losses turns it off.
	noRenames bool

	mu      sync.Mutex
	created map[int64]bool
	writes  int
	errs    []error
	serial  int
	runs    int
}

// newWorkload creates a few locations, and the workload that writes at them.
func newWorkload(t *testing.T, api *apiClient, seed int64) *workload {
	t.Helper()
	w := &workload{t: t, api: api, seed: seed, created: map[int64]bool{}}
	ctx := context.Background()
	for i, l := range []struct{ name, city, state string }{
		{"Convention Center", "Austin", "TX"}, {"Moscone", "San Francisco", "CA"}, {"Javits Center", "New York", "NY"},
	} {
		id, err := api.createLocation(ctx, l.name, l.city, l.state)
		if err != nil {
			t.Fatalf("create location %d: %v", i, err)
		}
		w.locations = append(w.locations, id)
	}
	return w
}

// Created returns a copy of the ids of every conference the workload created.
func (w *workload) Created() map[int64]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[int64]bool, len(w.created))
	for id := range w.created {
		out[id] = true
	}
	return out
}

// AddCreated records a conference created outside the workload.
func (w *workload) AddCreated(id int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.created[id] = true
}

// Writes returns how many writes succeeded so far.
func (w *workload) Writes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes
}

// Errors returns every failed write so far.
func (w *workload) Errors() []error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]error(nil), w.errs...)
}

func (w *workload) name() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.serial++
	return "Conference " + strconv.Itoa(w.serial)
}

func (w *workload) done(err error, id int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil && errors.Is(err, context.Canceled) {
		return // the test ended the workload
	}
	if err != nil {
		w.errs = append(w.errs, err)
		return
	}
	w.writes++
	if id > 0 {
		w.created[id] = true
	}
}

// Run makes n writes with workers concurrent writers at about rate writes per second in all,
// and returns when they are done or ctx ends. Each writer owns the conferences it created, so
// writes of one conference are sequential, and keeps at least two of them alive: some
// conferences are always alive at the end.
func (w *workload) Run(ctx context.Context, n, workers int, rate float64) {
	var wg sync.WaitGroup
	pause := time.Duration(float64(workers) / rate * float64(time.Second))
	w.mu.Lock()
	w.runs++
	round := w.runs
	w.mu.Unlock()
	for i := range workers {
		share := n / workers
		if i < n%workers {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w.seed), uint64(round*workers+i)))
			w.writer(ctx, rng, share, pause)
		}()
	}
	wg.Wait()
}

type owned struct {
	id       int64
	starts   time.Time
	revision int
}

func (w *workload) writer(ctx context.Context, rng *rand.Rand, n int, pause time.Duration) {
	var mine []*owned
	for range n {
		if ctx.Err() != nil {
			return
		}
		// Jitter around the pace, so that writers do not move in lockstep.
		sleepCtx(ctx, time.Duration(float64(pause)*(0.5+rng.Float64())))
		r := rng.Float64()
		switch {
		case len(mine) < 2 || r < 0.35:
			starts := time.Date(2027, time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 9, 0, 0, 0, time.UTC)
			loc := w.locations[rng.IntN(len(w.locations))]
			c, err := w.api.createConference(ctx, w.name(), starts, 1+rng.IntN(4), 10+rng.IntN(1000), loc)
			w.done(err, c.ID)
			if err == nil {
				mine = append(mine, &owned{id: c.ID, starts: starts})
			}
		case r < 0.75:
			c := mine[rng.IntN(len(mine))]
			c.revision++
			patch := map[string]any{"name": fmt.Sprintf("Conference %d rev %d", c.id, c.revision)}
			switch rng.IntN(3) {
			case 0:
				patch["max_attendees"] = rng.IntN(5000)
			case 1:
				c.starts = c.starts.Add(time.Duration(1+rng.IntN(72)) * time.Hour)
				patch["starts"] = c.starts.Format(time.RFC3339)
				patch["ends"] = c.starts.AddDate(0, 0, 1+rng.IntN(4)).Format(time.RFC3339)
			}
			_, err := w.api.updateConference(ctx, c.id, patch)
			w.done(err, 0)
		case r < 0.98 || w.noRenames:
			k := rng.IntN(len(mine))
			err := w.api.deleteConference(ctx, mine[k].id)
			w.done(err, 0)
			if err == nil {
				mine = append(mine[:k], mine[k+1:]...)
			}
		default:
			loc := w.locations[rng.IntN(len(w.locations))]
			err := w.api.renameLocation(ctx, loc, fmt.Sprintf("Hall %d", rng.IntN(1_000_000)))
			w.done(err, 0)
		}
	}
}

// requireNoWriteErrors fails t if any write of w failed.
func requireNoWriteErrors(t *testing.T, w *workload) {
	t.Helper()
	if errs := w.Errors(); len(errs) > 0 {
		t.Fatalf("%d writes failed, the first: %v", len(errs), errors.Join(errs[:min(3, len(errs))]...))
	}
}
