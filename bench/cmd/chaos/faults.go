package main

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"

	"conferencego/bench/stack"
)

// fault is one kind of fault: inject breaks something, heal mends it after the hold (the
// scheduler's random 1-4 s unless hold is set).
type fault struct {
	kind         string
	hold         time.Duration
	inject, heal func(context.Context) error
}

func nothing(context.Context) error { return nil }

// faults is the catalogue of the run's mode (docs/reliability.md lists it with its tests).
func (r *run) faults() []fault {
	var fs []fault
	for _, name := range stack.Services {
		s := r.services[name]
		fs = append(fs, fault{kind: "kill -9 " + name,
			inject: func(context.Context) error { s.proc().Kill(); return nil },
			heal:   s.start})
	}
	fs = append(fs, fault{kind: "postgres connections terminated", inject: func(ctx context.Context) error {
		_, err := r.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = $1 AND pid <> pg_backend_pid()`, r.db.Name)
		return err
	}, heal: nothing})
	if r.cluster != nil {
		fs = append(fs, fault{kind: "postgres restarted", inject: func(ctx context.Context) error {
			// Every other time as a crash: pg_ctl stop -m immediate, and recovery at the start.
			mode := "fast"
			if r.restarts%2 == 1 {
				mode = "immediate"
			}
			r.restarts++
			return r.cluster.Stop(ctx, mode)
		}, heal: r.cluster.Start})
	}
	toxic := func(kind string, p *toxiproxy.Proxy, hold time.Duration, toxics ...[]any) fault {
		return fault{kind: kind, hold: hold, inject: func(context.Context) error {
			for i, t := range toxics {
				if err := addToxic(p, fmt.Sprint("t", i), t[0].(string), t[1].(string), t[2].(map[string]any)); err != nil {
					return err
				}
			}
			return nil
		}, heal: func(ctx context.Context) error {
			for i := range toxics {
				if err := p.Toxics.RemoveToxic(ctx, fmt.Sprint("t", i)); err != nil {
					return err
				}
			}
			return nil
		}}
	}
	if r.mode == "push" {
		rp := r.redis
		fs = append(fs,
			fault{kind: "redis restarted empty", inject: func(context.Context) error { rp.kill(); return nil },
				heal: func(ctx context.Context) error { return rp.restart(ctx, false, false) }},
			fault{kind: "redis restarted with persistence", inject: func(context.Context) error { rp.stop(syscall.SIGTERM); return nil },
				heal: func(ctx context.Context) error { return rp.start(ctx, true) }},
			fault{kind: "redis restarted from an older snapshot", inject: func(context.Context) error { rp.kill(); return nil },
				heal: func(ctx context.Context) error { return rp.restart(ctx, false, true) }},
			toxic("net: redis latency 100±50 ms", r.redisPx, 0,
				[]any{"latency", "upstream", map[string]any{"latency": 50, "jitter": 25}},
				[]any{"latency", "downstream", map[string]any{"latency": 50, "jitter": 25}}),
			toxic("net: redis blackholed 5 s", r.redisPx, 5*time.Second,
				[]any{"timeout", "upstream", map[string]any{"timeout": 0}},
				[]any{"timeout", "downstream", map[string]any{"timeout": 0}}),
			toxic("net: redis cut mid-pipeline", r.redisPx, 0,
				[]any{"limit_data", "upstream", map[string]any{"bytes": 4096}}),
			fault{kind: "net: redis connections reset", inject: func(context.Context) error { r.redisPx.Stop(); return nil },
				heal: func(context.Context) error { return r.redisPx.Start() }},
		)
	} else {
		fs = append(fs,
			toxic("net: api-conference 2 s slower", r.confPx, 0,
				[]any{"latency", "downstream", map[string]any{"latency": 2000}}),
			toxic("net: api-conference response cut", r.confPx, 0,
				[]any{"limit_data", "downstream", map[string]any{"bytes": 2048}}),
		)
	}
	return slices.DeleteFunc(fs, func(f fault) bool { return slices.Contains(r.cfg.Skip, f.kind) })
}
