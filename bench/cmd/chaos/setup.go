package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"conferencego/bench/stack"
	"conferencego/syncer/pgcluster"
)

// svc is one service process, restartable with its spec.
type svc struct {
	spec stack.Spec
	mu   sync.Mutex
	p    *stack.Process
}

func (s *svc) proc() *stack.Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p
}

func (s *svc) start(ctx context.Context) error {
	p, err := stack.Start(ctx, s.spec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.p = p
	s.mu.Unlock()
	return nil
}

// setup starts Postgres's database, Redis (push), the proxies and the three services.
func (r *run) setup(ctx context.Context) error {
	redisURL, err := r.setupStores(ctx)
	if err != nil {
		return err
	}
	if err := r.startServices(ctx, redisURL); err != nil {
		return err
	}
	for i, city := range []string{"Austin", "Berlin", "Lisbon"} {
		var out struct {
			ID int64 `json:"id"`
		}
		if err := r.call(ctx, http.MethodPost, "/api/locations/", map[string]any{"name": fmt.Sprintf("Hall %d", i), "city": city, "room_count": 10, "state": "TX"}, &out); err != nil {
			return fmt.Errorf("create a location: %w", err)
		}
		r.locs = append(r.locs, out.ID)
	}
	return nil
}

// setupStores makes the run's database (on a cluster of its own with OwnPostgres), the proxy
// server and, in push mode, Redis behind its proxy, whose URL it returns.
func (r *run) setupStores(ctx context.Context) (redisURL string, err error) {
	admin := r.cfg.AdminURL
	if r.cfg.OwnPostgres {
		var settings []string
		if r.logical {
			settings = []string{"wal_level=logical"}
		}
		c, err := pgcluster.New(ctx, settings...)
		if err != nil {
			return "", err
		}
		r.cluster = c
		r.cleanups = append(r.cleanups, c.Remove)
		admin = c.AdminURL()
	}
	db, err := stack.CreateDatabase(ctx, admin, "chaos_")
	if err != nil {
		return "", err
	}
	r.db = db
	r.cleanups = append(r.cleanups, func() { _ = db.Drop() })
	if r.pool, err = pgxpool.New(ctx, db.URL); err != nil {
		return "", err
	}
	r.cleanups = append(r.cleanups, r.pool.Close)
	r.tp = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	if r.mode != "push" {
		return "", nil
	}
	if r.redis, err = startRedis(ctx, filepath.Join(r.cfg.Out, "redis-"+stack.RandomHex(3))); err != nil {
		return "", err
	}
	r.cleanups = append(r.cleanups, r.redis.kill)
	r.rdb = redis.NewClient(&redis.Options{Addr: r.redis.addr, MaxRetries: -1})
	r.cleanups = append(r.cleanups, func() { r.rdb.Close() })
	if r.redisPx, err = r.proxy("redis", r.redis.addr); err != nil {
		return "", err
	}
	return "redis://" + r.redisPx.Listen + "/0", nil
}

// startServices starts api-conference (behind its proxy), api-attendee and the syncer.
func (r *run) startServices(ctx context.Context, redisURL string) error {
	logDir := filepath.Join(r.cfg.Out, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	common := []string{"PATH=" + os.Getenv("PATH"), "LOG_FORMAT=json", "LOG_LEVEL=warn", "SYNC_TOKEN=" + stack.RandomHex(16),
		"SYNC_MODE=" + r.mode, "SYNC_STREAM=" + r.stream, "SYNC_GROUP=chaos"}
	add := func(name string, env ...string) (*svc, error) {
		addr, err := stack.FreeAddr()
		if err != nil {
			return nil, err
		}
		s := &svc{spec: stack.Spec{Name: name, Bin: filepath.Join(r.cfg.BinDir, name), Addr: addr,
			Env: append(append([]string(nil), common...), env...), Log: filepath.Join(logDir, r.name+"-"+name+".log")}}
		if err := s.start(ctx); err != nil {
			return nil, err
		}
		r.services[name] = s
		r.cleanups = append(r.cleanups, func() {
			if p := s.proc(); p != nil {
				p.Stop(15 * time.Second)
			}
		})
		return s, nil
	}
	confEnv, syncEnv := []string{"DATABASE_URL=" + r.db.URL}, []string(nil)
	if r.logical {
		confEnv = append(confEnv, "OUTBOX_TRANSPORT=logical", "OUTBOX_SLOT=chaos_outbox")
		syncEnv = append(syncEnv, "SYNC_OUTBOX_TRANSPORT=logical", "SYNC_SLOT=chaos_outbox")
	}
	conf, err := add(stack.Conference, confEnv...)
	if err != nil {
		return err
	}
	r.apiURL = conf.proc().URL()
	if r.confPx, err = r.proxy("conference", conf.spec.Addr); err != nil {
		return err
	}
	attEnv := []string{"DATABASE_URL=" + r.db.URL}
	if r.mode == "push" {
		attEnv = append(attEnv, "REDIS_URL="+redisURL, "SYNC_CLAIM_IDLE=1s")
	}
	att, err := add(stack.Attendee, attEnv...)
	if err != nil {
		return err
	}
	syncEnv = append(syncEnv, "CONFERENCE_URL=http://"+r.confPx.Listen, "ATTENDEE_URL="+att.proc().URL())
	if r.mode == "push" {
		syncEnv = append(syncEnv, "DATABASE_URL="+r.db.URL, "REDIS_URL="+redisURL)
	} else {
		syncEnv = append(syncEnv, "SYNC_POLL_INTERVAL=1s")
	}
	_, err = add(stack.Syncer, syncEnv...)
	return err
}

func (r *run) proxy(name, upstream string) (*toxiproxy.Proxy, error) {
	p := toxiproxy.NewProxy(r.tp, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("start the %s proxy: %w", name, err)
	}
	r.cleanups = append(r.cleanups, p.Stop)
	return p, nil
}

func addToxic(p *toxiproxy.Proxy, name, typ, stream string, attrs map[string]any) error {
	b, err := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": 1.0, "attributes": attrs})
	if err != nil {
		return err
	}
	_, err = p.Toxics.AddToxicJson(bytes.NewReader(b))
	return err
}

// redisProc is the run's redis-server. It always starts with an append-only file, unless it is
// started from a snapshot.
type redisProc struct {
	addr, dir string
	cmd       *exec.Cmd
	done      chan struct{}
}

func startRedis(ctx context.Context, dir string) (*redisProc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addr, err := stack.FreeAddr()
	if err != nil {
		return nil, err
	}
	p := &redisProc{addr: addr, dir: dir}
	return p, p.start(ctx, true)
}

func (p *redisProc) start(ctx context.Context, aof bool) error {
	host, port, _ := net.SplitHostPort(p.addr)
	appendOnly := "no"
	if aof {
		appendOnly = "yes"
	}
	p.cmd = exec.Command("redis-server", "--bind", host, "--port", port, "--dir", p.dir,
		"--logfile", filepath.Join(p.dir, "redis.log"), "--save", "", "--appendonly", appendOnly,
		"--daemonize", "no", "--protected-mode", "no")
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.done)
	rdb := redis.NewClient(&redis.Options{Addr: p.addr, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(30 * time.Second)
	for rdb.Ping(ctx).Err() != nil {
		if time.Now().After(deadline) {
			return errors.New("redis-server did not answer PING within 30s")
		}
		sleep(ctx, 50*time.Millisecond)
	}
	if !aof {
		return rdb.ConfigSet(ctx, "appendonly", "yes").Err()
	}
	return nil
}

func (p *redisProc) stop(sig syscall.Signal) {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

func (p *redisProc) kill() { p.stop(syscall.SIGKILL) }

// snapshot saves an RDB snapshot and keeps a copy for a later restart from it.
func (p *redisProc) snapshot(ctx context.Context, rdb *redis.Client) error {
	if err := rdb.Save(ctx).Err(); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(p.dir, "dump.rdb"))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(p.dir, "older.rdb"), b, 0o644)
}

// restart kills Redis and starts it again: keep keeps the append-only file (a restart with
// persistence), older starts from the older snapshot, neither starts empty.
func (p *redisProc) restart(ctx context.Context, keep, older bool) error {
	p.kill()
	if !keep {
		_ = os.RemoveAll(filepath.Join(p.dir, "appendonlydir"))
		_ = os.Remove(filepath.Join(p.dir, "dump.rdb"))
	}
	if older {
		b, err := os.ReadFile(filepath.Join(p.dir, "older.rdb"))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(p.dir, "dump.rdb"), b, 0o644); err != nil {
			return err
		}
		return p.start(ctx, false)
	}
	return p.start(ctx, true)
}
