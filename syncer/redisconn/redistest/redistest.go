// Package redistest starts Redis deployments of a test's own — one server, a primary with a
// replica whose replication the test can pause, a Sentinel, a three-node cluster — on free
// loopback ports in tb.TempDir(), and stops them when the test ends. It is exported so that the
// tests of the syncer and of api-attendee can use it.
//
// When a redis-server binary is missing, a test skips with the reason on a developer's machine
// and fails when CI is set.
package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Unavailable skips tb with msg, or fails it when CI is set: on CI a missing server is a broken
// machine, not a reason to pass.
func Unavailable(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// Option changes how StartServer runs redis-server.
type Option func(*serverOptions)

type serverOptions struct {
	persistent bool
	extra      func(tb testing.TB) []string // arguments decided per start attempt (ports)
}

// Persistent makes the server keep an append-only file in its directory, fsynced on every
// write, so that Kill and Start lose nothing. A test may also SAVE an RDB snapshot there
// (dump.rdb) to restore an older state later. Without it the server keeps nothing, as a Redis
// without a volume.
func Persistent() Option { return func(o *serverOptions) { o.persistent = true } }

// Server is one redis-server (or redis-sentinel) process of a test.
type Server struct {
	Addr string // 127.0.0.1:port, the same across restarts

	bin  string
	dir  string
	argv []string // fixed at the first start, so a restart keeps the same ports
	cmd  *exec.Cmd
	done chan struct{}
}

// StartServer starts a redis-server on a free port in a directory of its own. It is killed
// when tb ends.
func StartServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	var o serverOptions
	for _, opt := range opts {
		opt(&o)
	}
	return startProcess(tb, func(s *Server) []string {
		host, port, _ := net.SplitHostPort(s.Addr)
		argv := []string{"--bind", host, "--port", port, "--dir", s.dir,
			"--logfile", s.logFile(), "--daemonize", "no", "--protected-mode", "no",
			// A replica's first full sync would otherwise wait 5s for more replicas to share it.
			"--repl-diskless-sync-delay", "0"}
		if o.persistent {
			argv = append(argv, "--save", "", "--appendonly", "yes", "--appendfsync", "always")
		} else {
			argv = append(argv, "--save", "", "--appendonly", "no")
		}
		if o.extra != nil {
			argv = append(argv, o.extra(tb)...)
		}
		return argv
	})
}

// startProcess finds a free port and starts redis-server with the arguments argv makes for it.
// Another process may take the port between the probe and the start, so it tries a few times.
func startProcess(tb testing.TB, argv func(s *Server) []string) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Unavailable(tb, "redis-server is not installed (apt-get install redis-server): "+err.Error())
	}
	s := &Server{bin: bin, dir: tb.TempDir()}
	tb.Cleanup(func() { s.Kill(tb) })
	for attempt := 0; ; attempt++ {
		s.Addr = freeAddr(tb)
		s.argv = argv(s)
		err := s.start()
		if err == nil {
			return s
		}
		if attempt == 4 {
			tb.Fatalf("start redis-server: %v", err)
		}
	}
}

// URL is the server's URL for standalone mode.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Dir is the server's directory: its log, and its data files when persistent.
func (s *Server) Dir() string { return s.dir }

// Port is the port of Addr.
func (s *Server) Port() string {
	_, port, _ := net.SplitHostPort(s.Addr)
	return port
}

// Client returns a client of this one server, closed when tb ends. It fails fast while the
// server is down — no retries inside go-redis — so that a test sees an outage as it is.
func (s *Server) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	rdb := redis.NewClient(&redis.Options{
		Addr: s.Addr, MaxRetries: -1, DialerRetries: 1, DialerRetryTimeout: time.Millisecond,
		DialTimeout: time.Second,
	})
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// Kill ends the server with SIGKILL, as a crash would, and waits until it is gone.
func (s *Server) Kill(tb testing.TB) {
	tb.Helper()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Start starts the killed server again on the same port, with what its files hold.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	if err := s.start(); err != nil {
		tb.Fatalf("start redis-server on %s again: %v", s.Addr, err)
	}
}

// Restart kills the server and starts it again.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Kill(tb)
	s.Start(tb)
}

func (s *Server) logFile() string { return filepath.Join(s.dir, "redis.log") }

// start runs the process and returns once it answers PING.
func (s *Server) start() error {
	cmd := exec.Command(s.bin, s.argv...)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1, DialerRetries: 1})
	defer rdb.Close()
	// Dial first, so that go-redis does not log every refused connection while the server starts.
	err := poll(10*time.Second, done, func(ctx context.Context) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", s.Addr)
		if err != nil {
			return err
		}
		conn.Close()
		return rdb.Ping(ctx).Err()
	})
	if err == nil {
		s.cmd, s.done = cmd, done
		return nil
	}
	_ = cmd.Process.Kill()
	<-done
	log, _ := os.ReadFile(s.logFile())
	return fmt.Errorf("%w; log: %s", err, tail(log))
}

// errExited is poll's error when the process it waits on ended.
var errExited = errors.New("the process exited")

// poll calls try until it returns nil, for at most limit, or until exited is closed. The
// servers are other processes that send no signal when they are ready, so polling against a
// deadline is the way to wait for them.
func poll(limit time.Duration, exited <-chan struct{}, try func(ctx context.Context) error) error {
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := try(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s: %w", limit, err)
		}
		timer := time.NewTimer(20 * time.Millisecond)
		select {
		case <-exited:
			timer.Stop()
			return fmt.Errorf("%w: %w", errExited, err)
		case <-timer.C:
		}
	}
}

// info returns the fields of INFO section as a map.
func info(ctx context.Context, rdb *redis.Client, section string) (map[string]string, error) {
	text, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	fields := map[string]string{}
	for _, line := range strings.Split(text, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = v
		}
	}
	return fields, nil
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
	b = bytes.TrimSpace(b)
	if len(b) > 800 {
		b = b[len(b)-800:]
	}
	return string(b)
}
