package main

// A small starter of the real stack for the browser test: the three services and this
// program, built as the images build them, against a scratch database on the test's Postgres
// and a stream of its own on the test's Redis. (syncer/e2e has a fuller one; this one only
// needs to start and stop.)

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// binDir holds the binaries built for this test binary; TestMain creates and removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "conferencego-web-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "web tests:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// unavailable skips a test whose server or browser is missing, and fails it in CI.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format+" (CI is set, so this fails instead of skipping)", args...)
	}
	t.Skipf(format, args...)
}

var buildOnce struct {
	sync.Once
	err error
}

// buildBinaries builds the four programs once per test binary, as docker/Dockerfile does
// (static, -trimpath), from the workspace root.
func buildBinaries(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-trimpath", "-o", binDir+"/", "./api-conference", "./api-attendee", "./syncer", "./web")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
}

func adminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newDatabase creates an empty database, dropped when t ends, and returns its URL.
func newDatabase(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL())
	if err != nil {
		unavailable(t, "Postgres is not reachable at %s: %v", adminURL(), err)
	}
	defer conn.Close(context.Background())
	name := "t_web_" + randomHex(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, adminURL()); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(ctx)
		}
	})
	u, err := url.Parse(adminURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

const redisAddr = "127.0.0.1:6379"

// newStream names a stream of t's own on the test's Redis, deleted with its keys when t ends.
func newStream(t *testing.T) string {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		unavailable(t, "Redis is not reachable on %s: %v", redisAddr, err)
	}
	stream := "test.web." + randomHex(6)
	t.Cleanup(func() {
		defer rdb.Close()
		tag := "{" + stream + "}"
		rdb.Del(context.Background(), stream, tag+".dlq", tag+".epoch")
	})
	return stream
}

// freeAddr returns a loopback address with a port nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is one running program; it gets SIGTERM when its test ends, and its log's tail is
// printed if the test failed.
type proc struct {
	name, url string
	cmd       *exec.Cmd
	log       *lockedBuffer
	done      chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs the binary name on addr with env and waits until its /healthz answers.
func start(t *testing.T, name, addr string, env map[string]string) *proc {
	t.Helper()
	p := &proc{name: name, url: "http://" + addr, log: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, name))
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HTTP_ADDR=" + addr, "LOG_FORMAT=text"}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, tail(p.log.String(), 40))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before serving:\n%s", name, p.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no /healthz within 30s: %v\n%s", name, err, p.log)
		}
		time.Sleep(25 * time.Millisecond) // polling against a deadline
	}
}

// Stop ends the program with SIGTERM, and kills it if it has not stopped within 10 s.
func (p *proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stack is the system of one browser test.
type stack struct {
	conference, attendee, syncer, web *proc
}

// startStack starts api-conference, api-attendee, the syncer in mode and the web program. The
// page is served from 127.0.0.1:<port>, so that origin is the one the services' CORS allows.
func startStack(t *testing.T, mode string) *stack {
	t.Helper()
	buildBinaries(t)
	db, stream := newDatabase(t), newStream(t)
	const token = "web-test-sync-token-0123456789"
	confAddr, attAddr, syncAddr, webAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	origin := "http://" + webAddr
	s := &stack{}
	s.conference = start(t, "api-conference", confAddr, map[string]string{"DATABASE_URL": db, "CORS_ALLOWED_ORIGINS": origin})
	s.attendee = start(t, "api-attendee", attAddr, map[string]string{
		"DATABASE_URL": db, "SYNC_MODE": mode, "SYNC_TOKEN": token, "REDIS_URL": "redis://" + redisAddr + "/0",
		"SYNC_STREAM": stream, "CORS_ALLOWED_ORIGINS": origin,
	})
	s.syncer = start(t, "syncer", syncAddr, map[string]string{
		"DATABASE_URL": db, "SYNC_MODE": mode, "SYNC_TOKEN": token, "REDIS_URL": "redis://" + redisAddr + "/0",
		"SYNC_STREAM": stream, "SYNC_POLL_INTERVAL": "200ms", "CONFERENCE_URL": s.conference.url,
		"ATTENDEE_URL": s.attendee.url, "CORS_ALLOWED_ORIGINS": origin,
	})
	s.web = start(t, "web", webAddr, map[string]string{
		"CONFERENCE_URL": s.conference.url, "ATTENDEE_URL": s.attendee.url, "SYNCER_URL": s.syncer.url,
	})
	return s
}

var errNoChromium = errors.New("no chromium")

// chromium finds the browser: $CHROMIUM, or Debian's chromium on the PATH.
func chromium() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return exec.LookPath(p)
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errNoChromium
}
