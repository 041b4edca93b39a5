package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"conferencego/bench/stack"
)

// The binaries under test.
const (
	binConference = stack.Conference
	binAttendee   = stack.Attendee
	binSyncer     = stack.Syncer
)

// binDir holds the binaries built for this test binary; TestMain creates and removes it.
var binDir string

type build struct {
	once sync.Once
	path string
	err  error
}

var builds = map[string]*build{binConference: {}, binAttendee: {}, binSyncer: {}}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "conferencego-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	removeLogicalCluster()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binary returns the path of name, built once per test binary the way the images build it
// (static, -trimpath) from the workspace root.
func binary(t *testing.T, name string) string {
	t.Helper()
	b := builds[name]
	b.once.Do(func() {
		start := time.Now()
		b.path, b.err = stack.Build(context.Background(), binDir, name)
		if b.err == nil {
			logf("built %s in %s", name, time.Since(start).Round(time.Millisecond))
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// logf writes to stderr outside of any test: for what TestMain-scoped code wants to say.
func logf(format string, args ...any) {
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
	}
}

// freeAddr returns a loopback address with a port nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := stack.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// proc is one of the services, started from its binary with an environment of its own, on a
// fixed address so that it can be killed and started again where the others expect it.
type proc struct {
	t    *testing.T
	name string // for logs: "syncer", "syncer-2", …
	bin  string
	env  []string
	Addr string
	log  string // log file, appended to by every start

	mu       sync.Mutex
	cur      *stack.Process // nil while stopped
	done     chan struct{}  // closed once cur's exit is accounted for
	expected bool           // the current process is being stopped or killed by the test
	exitErr  error          // set when the process ended without the test asking
	starts   int
}

// startProc starts bin with env (HTTP_ADDR is added) and waits until /healthz answers. It is
// stopped with SIGTERM when t ends, and its log's tail is printed if t failed.
func startProc(t *testing.T, name, bin string, env map[string]string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, bin: bin, Addr: freeAddr(t), log: filepath.Join(t.TempDir(), name+".log")}
	p.env = []string{"PATH=" + os.Getenv("PATH"), "LOG_FORMAT=json"}
	for k, v := range env {
		p.env = append(p.env, k+"="+v)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("last lines of the %s log (%s):\n%s", p.name, p.log, tailFile(p.log, 40))
		}
	})
	// Another process may take the free port between the probe and the start: try another.
	for attempt := 1; ; attempt++ {
		err := p.start()
		if err == nil {
			return p
		}
		if attempt == 3 {
			t.Fatalf("%v\n%s log:\n%s", err, p.name, tailFile(p.log, 40))
		}
		p.Addr = freeAddr(t)
	}
}

// URL is the base URL of the process's HTTP server.
func (p *proc) URL() string { return "http://" + p.Addr }

// Start starts the process (again) on its address and waits until /healthz answers.
func (p *proc) Start() {
	p.t.Helper()
	if err := p.start(); err != nil {
		p.t.Fatalf("%v\n%s log:\n%s", err, p.name, tailFile(p.log, 40))
	}
}

// start starts the process and watches for an exit the test did not ask for. A start that
// fails leaves nothing running (stack.Start kills what did not become healthy).
func (p *proc) start() error {
	p.mu.Lock()
	p.starts++
	header := fmt.Sprintf("--- e2e: start #%d of %s on %s at %s\n", p.starts, p.name, p.Addr, time.Now().Format(time.RFC3339Nano))
	spec := stack.Spec{Name: p.name, Bin: p.bin, Env: slices.Clip(p.env), Addr: p.Addr, Log: p.log}
	p.mu.Unlock()
	if err := appendFile(p.log, header); err != nil {
		return err
	}
	sp, err := stack.Start(context.Background(), spec)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cur, p.done, p.expected = sp, done, false
	p.mu.Unlock()
	go func() {
		<-sp.Done()
		p.mu.Lock()
		if !p.expected && p.cur == sp {
			p.exitErr = fmt.Errorf("%s exited on its own: %v", p.name, sp.ExitErr())
		}
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Kill ends the process with SIGKILL (kill -9) and waits until it is gone.
func (p *proc) Kill() { p.end(func(sp *stack.Process) { sp.Kill() }) }

// Stop ends the process with SIGTERM, and SIGKILL if it is still there after 15 s.
func (p *proc) Stop() {
	const grace = 15 * time.Second
	p.end(func(sp *stack.Process) {
		if sp.Stop(grace) {
			p.t.Errorf("%s did not stop within %s of SIGTERM; killing it", p.name, grace)
		}
	})
}

// Freeze stops the process with SIGSTOP: it holds its connections but does nothing.
func (p *proc) Freeze() { p.send(syscall.SIGSTOP) }

// Thaw lets a frozen process go on with SIGCONT.
func (p *proc) Thaw() { p.send(syscall.SIGCONT) }

func (p *proc) send(sig syscall.Signal) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		p.t.Fatalf("%s is not running", p.name)
	}
	if err := p.cur.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// Restart kills the process with SIGKILL and starts it again on the same address.
func (p *proc) Restart() {
	p.t.Helper()
	p.Kill()
	p.Start()
}

// end marks the current process's exit as asked for, ends it with stop and waits until its
// exit is accounted for.
func (p *proc) end(stop func(*stack.Process)) {
	p.mu.Lock()
	sp, done := p.cur, p.done
	if sp == nil {
		p.mu.Unlock()
		return
	}
	p.expected = true
	p.mu.Unlock()
	stop(sp)
	<-done
	p.mu.Lock()
	if p.cur == sp {
		p.cur = nil
	}
	p.mu.Unlock()
}

// SetEnv changes one variable of the process's environment for its next start.
func (p *proc) SetEnv(key, value string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.env = slices.DeleteFunc(p.env, func(kv string) bool { return strings.HasPrefix(kv, key+"=") })
	p.env = append(p.env, key+"="+value)
}

// PeakRSS is the process's peak resident set size so far (VmHWM), in bytes.
func (p *proc) PeakRSS() (int64, error) {
	p.mu.Lock()
	sp := p.cur
	p.mu.Unlock()
	if sp == nil {
		return 0, fmt.Errorf("%s is not running", p.name)
	}
	pid := sp.Pid()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// Err reports whether the process ended without the test asking.
func (p *proc) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// tailFile returns the last n lines of the file at path.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// redisServer is a redis-server process of one test on a free port. Without persistence (the
// default) a restart loses every key, as a Redis without a volume does.
type redisServer struct {
	t       *testing.T
	Addr    string
	dir     string
	persist bool

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// startRedis starts a redis-server for t. With persist, it keeps its data in an append-only
// file across a Stop and Start (SHUTDOWN on SIGTERM writes it out).
func startRedis(t *testing.T, persist bool) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		unavailable(t, "redis-server is not installed (apt-get install redis-server): "+err.Error())
	}
	s := &redisServer{t: t, Addr: freeAddr(t), dir: t.TempDir(), persist: persist}
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("last lines of the redis-server log:\n%s", tailFile(filepath.Join(s.dir, "redis.log"), 20))
		}
	})
	for attempt := 1; ; attempt++ {
		err := s.start()
		if err == nil {
			return s
		}
		if attempt == 3 {
			t.Fatal(err)
		}
		s.Addr = freeAddr(t) // the port was taken between the probe and the start
	}
}

// URL is the server's URL.
func (s *redisServer) URL() string { return "redis://" + s.Addr + "/0" }

// Start starts the server again on its port and waits until it answers PING.
func (s *redisServer) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *redisServer) start() error {
	host, port, _ := net.SplitHostPort(s.Addr)
	appendOnly := "no"
	if s.persist {
		appendOnly = "yes"
	}
	logFile := filepath.Join(s.dir, "redis.log")
	cmd := exec.Command("redis-server",
		"--bind", host, "--port", port, "--dir", s.dir, "--logfile", logFile,
		"--save", "", "--appendonly", appendOnly, "--daemonize", "no", "--protected-mode", "no")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := redisPing(s.Addr)
		if err == nil {
			s.mu.Lock()
			s.cmd, s.done = cmd, done
			s.mu.Unlock()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on %s exited at start: %s", s.Addr, tailFile(logFile, 10))
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server on %s did not answer PING within 15s: %w", s.Addr, err)
		}
		select { // poll against the deadline
		case <-done:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// redisPing sends PING in the inline protocol, so that the wait needs no client state.
func redisPing(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(buf[:n]), "+PONG") {
		return fmt.Errorf("PING answered %q", buf[:n])
	}
	return nil
}

// Kill ends the server with SIGKILL: without persistence everything it held is gone.
func (s *redisServer) Kill() { s.stop(syscall.SIGKILL) }

// Stop ends the server with SIGTERM, which makes it write its append-only file when it has one.
func (s *redisServer) Stop() { s.stop(syscall.SIGTERM) }

func (s *redisServer) stop(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// unavailable skips t for a missing server on a developer's machine, and fails it in CI.
func unavailable(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// seed returns the seed of t's randomness: E2E_SEED when set, else the clock. It is logged so
// that a failure can be replayed.
func seed(t *testing.T) int64 {
	t.Helper()
	s := time.Now().UnixNano()
	if v := os.Getenv("E2E_SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("E2E_SEED=%q: not an integer", v)
		}
		s = n
	}
	t.Logf("seed %d (set E2E_SEED=%d to replay)", s, s)
	return s
}

// sleepCtx waits for d or until ctx ends; it paces workloads and holds outages, and never
// stands in for waiting on a condition.
func sleepCtx(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}
