package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"

	"conferencego/bench/stack"
)

// operations are the four measured requests: the detail and the list of the seeded
// conferences, and creates and updates at location.
func operations(location int64, confIDs []int64) []operation {
	return []operation{
		{name: "GET /api/conferences/{id}/", req: func(i int) (string, string, []byte) {
			return "GET", fmt.Sprintf("/api/conferences/%d/", confIDs[i%len(confIDs)]), nil
		}},
		{name: fmt.Sprintf("GET /api/conferences/?limit=100 (%d items)", min(len(confIDs), 100)), req: func(int) (string, string, []byte) {
			return "GET", "/api/conferences/?limit=100", nil
		}},
		{name: "POST /api/conferences/", req: func(i int) (string, string, []byte) {
			return "POST", "/api/conferences/", fmt.Appendf(nil, `{"name":"Load %d","starts":"2027-03-01","ends":"2027-03-03","max_presentations":5,"max_attendees":100,"location":%d}`, i, location)
		}},
		// Every PUT changes the name, so each makes a new version and an event on both servers.
		{name: "PUT /api/conferences/{id}/", req: func(i int) (string, string, []byte) {
			return "PUT", fmt.Sprintf("/api/conferences/%d/", confIDs[i%len(confIDs)]), fmt.Appendf(nil, `{"name":"Update %d","starts":"2027-03-01","ends":"2027-03-03","max_presentations":5,"max_attendees":100,"location":%d}`, i, location)
		}},
	}
}

// measure drives each operation on both servers, o.rounds times, and pools each server's
// results per operation.
func measure(ctx context.Context, o options, ops []operation, clients [2]*http.Client, servers [2]*stack.Process) ([]row, error) {
	// Request numbers are unique over the whole run, so that no PUT repeats an earlier one's
	// name: api-conference answers a PUT that changes nothing without writing.
	var seq atomic.Int64
	var rows []row
	for _, op := range ops {
		r := row{name: op.name}
		// Ours and the floor right after each other, so that both see the same machine as
		// nearly as a shared one allows; with more rounds the order alternates, so that neither
		// always goes first (into a smaller table, a cooler cache, a quieter neighbour).
		for round := range o.rounds {
			order := []int{0, 1}
			if round%2 == 1 {
				order = []int{1, 0}
			}
			for _, k := range order {
				p := servers[k]
				fmt.Fprintf(os.Stderr, "loadgen: round %d/%d: %s on %s ...\n", round+1, o.rounds, op.name, p.Name)
				if o.warmup > 0 {
					if _, err := op.drive(ctx, clients[k], p.URL(), &seq, o.concurrency, o.warmup); err != nil {
						return nil, fmt.Errorf("%s: %w", p.Name, err)
					}
				}
				res, err := op.drive(ctx, clients[k], p.URL(), &seq, o.concurrency, o.duration)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", p.Name, err)
				}
				r.results[k] = r.results[k].add(res)
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}
