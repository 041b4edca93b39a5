// Package redistest gives tests Redis: per-test stream and group names on the shared server,
// and a private redis-server process for tests that must kill and restart it.
//
// The shared server is TEST_REDIS_URL (default redis://127.0.0.1:6379/0); tests only ever
// touch their own keys on it. When it cannot be reached, or redis-server is not installed, a
// test skips with the reason on a developer's machine and fails when CI is set.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"conferencego/syncer/redisconn"
)

// URL is the shared server's URL.
func URL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

func unavailable(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// Client returns a client of the shared server, closed when tb ends.
func Client(tb testing.TB) *redis.Client {
	tb.Helper()
	opts, err := redis.ParseURL(URL())
	if err != nil {
		tb.Fatalf("TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opts)
	tb.Cleanup(func() { rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		unavailable(tb, fmt.Sprintf("Redis is not reachable at %s (set TEST_REDIS_URL): %v", URL(), err))
	}
	return rdb
}

// Names returns a stream and a group name of tb's own. The stream and its dead-letter stream
// are deleted from rdb when tb ends.
func Names(tb testing.TB, rdb *redis.Client) (stream, group string) {
	tb.Helper()
	id := randomName()
	stream, group = "test."+id+".changes", "test-"+id
	tb.Cleanup(func() {
		_ = rdb.Del(context.Background(), stream, redisconn.Keys(stream).DeadLetter).Err()
	})
	return stream, group
}

// Server is a redis-server process of one test, without persistence: a restart loses every
// key, as a Redis without a volume does.
type Server struct {
	Addr string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartServer starts a redis-server on a free port in a temporary directory. It is killed
// when tb ends.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(tb, "redis-server is not installed (apt-get install redis-server): "+err.Error())
	}
	s := &Server{dir: tb.TempDir()}
	tb.Cleanup(func() { s.Kill(tb) })
	// Another process may take the free port between the probe and the start; try again.
	for attempt := 0; ; attempt++ {
		s.Addr = freeAddr(tb)
		err := s.start(bin)
		if err == nil {
			return s
		}
		if attempt == 4 {
			tb.Fatalf("start redis-server: %v", err)
		}
	}
}

// URL is the server's URL.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Client returns a client of the server, closed when tb ends. It fails fast while the server
// is down — no retries or dial retries inside go-redis — so that what a test sees of an
// outage is the caller's own retry loop, not the client's.
func (s *Server) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{
		Addr: s.Addr, MaxRetries: -1, DialerRetries: 1, DialerRetryTimeout: time.Millisecond,
		DialTimeout: time.Second,
	})
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// Kill ends the server with SIGKILL and waits until it is gone.
func (s *Server) Kill(tb testing.TB) {
	tb.Helper()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Start starts the server again on the same port, empty.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.start(bin); err != nil {
		tb.Fatalf("restart redis-server on %s: %v", s.Addr, err)
	}
}

// Restart kills the server and starts it again, empty, on the same port.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Kill(tb)
	s.Start(tb)
}

func (s *Server) start(bin string) error {
	host, port, _ := net.SplitHostPort(s.Addr)
	logFile := filepath.Join(s.dir, "redis.log")
	cmd := exec.Command(bin,
		"--bind", host, "--port", port, "--dir", s.dir, "--logfile", logFile,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no")
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-done:
			log, _ := os.ReadFile(logFile)
			return fmt.Errorf("redis-server exited at start: %s", tail(log))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			s.cmd, s.done = cmd, done
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return errors.Join(errors.New("redis-server did not answer PING within 10s"), err)
		}
		// Polling against the deadline: the server is a separate process with no other signal.
		timer := time.NewTimer(10 * time.Millisecond)
		select {
		case <-done:
		case <-timer.C:
		}
		timer.Stop()
	}
}

func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func tail(b []byte) string {
	if len(b) > 500 {
		b = b[len(b)-500:]
	}
	return string(b)
}

func randomName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
