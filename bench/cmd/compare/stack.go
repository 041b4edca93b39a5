package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// stack is one mode's three processes on a fresh database and fresh stream names.
type stack struct {
	dbName, dbURL    string
	pool             *pgxpool.Pool
	conference       *proc
	attendee, syncer *proc
	stream           string
	cleanup          []func()

	binDir, logDir, mode string
	common, syncerEnv    []string
}

type proc struct {
	name     string
	cmd      *exec.Cmd
	url      string
	done     chan error
	stopOnce sync.Once
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startStack creates the database, starts the three binaries of binDir in mode (push, or pull
// with the given interval) and waits until each answers /healthz.
func startStack(ctx context.Context, o options, m mode, logDir string) (*stack, error) {
	s := &stack{stream: "compare." + randomHex(4) + ".changes"}
	admin, err := pgx.Connect(ctx, o.adminURL)
	if err != nil {
		return nil, fmt.Errorf("-admin-url: %w", err)
	}
	defer admin.Close(ctx)
	s.dbName = "compare_" + randomHex(6)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+s.dbName); err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}
	s.cleanup = append(s.cleanup, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, o.adminURL); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+s.dbName+" WITH (FORCE)")
			conn.Close(ctx)
		}
	})
	u, _ := url.Parse(o.adminURL)
	u.Path = "/" + s.dbName
	s.dbURL = u.String()
	if s.pool, err = pgxpool.New(ctx, s.dbURL); err != nil {
		s.stop()
		return nil, err
	}

	s.binDir, s.logDir, s.mode = o.binDir, logDir, m.name()
	s.common = []string{"DATABASE_URL=" + s.dbURL, "REDIS_URL=" + o.redisURL, "SYNC_STREAM=" + s.stream,
		"SYNC_GROUP=attendee", "SYNC_TOKEN=" + randomHex(16), "LOG_FORMAT=json", "LOG_LEVEL=info"}
	if s.conference, err = s.launch(ctx, "api-conference"); err != nil {
		s.stop()
		return nil, err
	}
	if s.attendee, err = s.launch(ctx, "api-attendee", "SYNC_MODE="+m.kind); err != nil {
		s.stop()
		return nil, err
	}
	if err := instrument(ctx, s.pool); err != nil {
		s.stop()
		return nil, err
	}
	s.syncerEnv = []string{"SYNC_MODE=" + m.kind, "CONFERENCE_URL=" + s.conference.url, "ATTENDEE_URL=" + s.attendee.url}
	if m.kind == "pull" {
		s.syncerEnv = append(s.syncerEnv, "SYNC_POLL_INTERVAL="+m.interval.String())
		if m.list {
			s.syncerEnv = append(s.syncerEnv, "SYNC_PULL=list")
		}
	}
	if s.syncer, err = s.launch(ctx, "syncer", s.syncerEnv...); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// launch starts binary name on a free port with the stack's settings and env, logging to a
// file (appended to, so a restarted process keeps its earlier log), and waits until it answers.
func (s *stack) launch(ctx context.Context, name string, env ...string) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(s.logDir, s.mode+"-"+name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(s.binDir, name))
	cmd.Env = append(append(os.Environ(), s.common...), append(env, "HTTP_ADDR="+addr)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, url: "http://" + addr, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); logf.Close() }()
	s.cleanup = append(s.cleanup, p.stop)
	return p, waitHealthy(ctx, p)
}

func waitHealthy(ctx context.Context, p *proc) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-p.done:
			return fmt.Errorf("%s exited at start: %v (see its log)", p.name, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer /healthz within 30s", p.name)
		}
	}
}

// stop ends the process with SIGTERM (SIGKILL after 15 s); calling it again does nothing.
func (p *proc) stop() {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// stop ends the processes and drops the database, in reverse order of creation.
func (s *stack) stop() {
	if s.pool != nil {
		s.pool.Close()
	}
	for i := len(s.cleanup) - 1; i >= 0; i-- {
		s.cleanup[i]()
	}
}

// instrument records, without touching the services, every change written to the outbox and
// every change applied to the ConferenceVO table, with their times from the one Postgres
// clock both services share. The triggers cost each side one insert per change, equally in
// every mode.
func instrument(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `
CREATE SCHEMA compare;
CREATE TABLE compare.source (conference_id bigint, version bigint, type text, occurred_at timestamptz);
CREATE TABLE compare.applied (conference_id bigint, version bigint, deleted boolean, applied_at timestamptz);
CREATE INDEX ON compare.applied (conference_id, applied_at);
CREATE FUNCTION compare.log_source() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO compare.source VALUES (NEW.conference_id, NEW.version, NEW.type, NEW.occurred_at);
  RETURN NULL;
END $$;
CREATE FUNCTION compare.log_applied() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO compare.applied VALUES (NEW.conference_id, NEW.version, NEW.deleted, NEW.applied_at);
  RETURN NULL;
END $$;
CREATE TRIGGER compare_source AFTER INSERT ON conference.outbox FOR EACH ROW EXECUTE FUNCTION compare.log_source();
CREATE TRIGGER compare_applied AFTER INSERT OR UPDATE ON attendee.conference_vos FOR EACH ROW EXECUTE FUNCTION compare.log_applied();`)
	if err != nil {
		return fmt.Errorf("instrument the database: %w", err)
	}
	return nil
}

// resetMeasurements forgets what the seeding recorded.
func resetMeasurements(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, "TRUNCATE compare.source, compare.applied")
	return err
}

// mismatches counts conferences whose copy differs from the source: live ones missing or at
// another version, and copies still live of conferences the source no longer has.
func mismatches(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var n int
	err := pool.QueryRow(ctx, `SELECT count(*) FROM conference.conferences c
		FULL JOIN (SELECT conference_id, version FROM attendee.conference_vos WHERE NOT deleted) v ON v.conference_id = c.id
		WHERE c.id IS NULL OR v.conference_id IS NULL OR c.version <> v.version`).Scan(&n)
	return n, err
}

// awaitConverged polls until the copy equals the source or timeout passes.
func awaitConverged(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		n, err := mismatches(ctx, pool)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("%d conferences still differ after %s", n, timeout)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
