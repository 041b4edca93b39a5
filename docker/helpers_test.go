package docker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	"conferencego/syncer/pgcluster"
)

// root is the repository root (the workspace root): the tests run in docker/.
const root = ".."

// unavailable skips t because a server or tool it needs is missing, or fails it under CI, where
// everything must be there.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set, so this fails instead of skipping)")
	}
	t.Skip(msg)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// freePort returns a loopback port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitFor calls check until it returns nil or the deadline passes, and then fails t with the
// last error.
func waitFor(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := 10 * time.Millisecond
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		<-time.After(wait) // polling against the deadline
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// adminURL is the Postgres server where the tests create databases and roles.
func adminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// connectURL opens a connection, closed when t ends.
func connectURL(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", redact(dsn), err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// connectAdminAt connects to the admin database of the server at dsn; a server that does not
// answer skips the test (fails it in CI).
func connectAdminAt(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		unavailable(t, "Postgres is not reachable at %s (set TEST_DATABASE_URL): %v", redact(dsn), err)
	}
	return conn
}

// withUser returns dsn with its user, password and database replaced.
func withUser(t *testing.T, dsn, user, password, database string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("database URL: %v", err)
	}
	u.User = url.UserPassword(user, password)
	u.Path = "/" + database
	return u.String()
}

// onDatabase returns dsn with its database replaced.
func onDatabase(t *testing.T, dsn, database string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("database URL: %v", err)
	}
	u.Path = "/" + database
	return u.String()
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// services are the three binaries and the web page's, named as their directories in the workspace.
var services = []string{"api-conference", "api-attendee", "syncer", "web"}

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "conferencego-docker-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "docker tests:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	pgcluster.RemoveShared()
	os.RemoveAll(dir)
	os.Exit(code)
}

// logicalCluster returns the admin URL of a Postgres cluster of the test binary's own with
// wal_level=logical, as compose starts its Postgres (the shared server runs with replica).
func logicalCluster(t *testing.T) string {
	t.Helper()
	c, err := pgcluster.Shared("wal_level=logical")
	if errors.Is(err, pgcluster.ErrNoPostgres) {
		unavailable(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c.AdminURL()
}

// binary returns the path of the service's binary ("api-conference", …) or of
// "docker/healthcheck" as the image holds it: built by replaying docker/Dockerfile, so that the
// binary tested is the binary shipped.
func binary(t *testing.T, pkg string) string {
	t.Helper()
	if pkg == "docker/healthcheck" {
		return filepath.Join(image(t, services[0]), "healthcheck")
	}
	return filepath.Join(image(t, pkg), entrypoint(t))
}

// proc is a running service binary; it gets SIGTERM when its test ends, and its log is printed
// if the test failed.
type proc struct {
	name string
	url  string
	// token is sent as the bearer token to /internal/… routes.
	token string
	cmd   *exec.Cmd
	log   *syncBuffer
	done  chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startService starts the service binary with env (HTTP_ADDR is added) and waits until its
// /healthz answers.
func startService(t *testing.T, name string, env map[string]string) *proc {
	t.Helper()
	bin := binary(t, name)
	port := freePort(t)
	p := &proc{name: name, url: fmt.Sprintf("http://127.0.0.1:%d", port), log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LOG_FORMAT=json", fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", port)}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("log of %s:\n%s", name, p.log.String())
		}
	})
	waitFor(t, 30*time.Second, name+" answers /healthz", func() error {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %v\n%s", name, p.cmd.ProcessState, p.log.String())
		default:
		}
		_, err := p.do(http.MethodGet, "/healthz", nil, http.StatusOK)
		return err
	})
	return p
}

// do sends a request with an optional JSON body and returns the body of an answer with status
// want.
func (p *proc) do(method, path string, body any, want int) ([]byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.url+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if p.token != "" && strings.HasPrefix(path, "/internal/") {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return b, fmt.Errorf("%s %s: %s, want %d: %s", method, path, resp.Status, want, b)
	}
	return b, nil
}

// mustDo is do that fails t, and decodes the answer into out when out is not nil.
func (p *proc) mustDo(t *testing.T, method, path string, body any, want int, out any) {
	t.Helper()
	b, err := p.do(method, path, body, want)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// pgCode returns the SQLSTATE of a Postgres error, or "" for anything else.
func pgCode(err error) string {
	var pgErr interface{ SQLState() string }
	if errors.As(err, &pgErr) {
		return pgErr.SQLState()
	}
	return ""
}
