// Package stack starts what the bench's commands and the end-to-end tests run against: a
// scratch Postgres database, the three service binaries (built as the images build them, or
// given), each on a loopback port and waited for until /healthz answers, and stops them all.
// compare, loadgen and the e2e tests share it, so that a stack starts and stops one way.
package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// The service binaries, named as their directories in the workspace.
const (
	Conference = "api-conference"
	Attendee   = "api-attendee"
	Syncer     = "syncer"
)

// Services are the three binaries of a stack, in the order they start.
var Services = []string{Conference, Attendee, Syncer}

// RandomHex returns 2n random hexadecimal digits, for names of a run's own (databases,
// streams, groups, tokens).
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// FreeAddr returns a loopback address with a port nobody listens on right now. Another
// process may take it before it is used: Start reports that as a process that did not start.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Spec says how to start one service.
type Spec struct {
	Name string   // for errors: "syncer", "syncer-2", …
	Bin  string   // path of the binary
	Env  []string // its whole environment; Start adds HTTP_ADDR
	Addr string   // where it listens (from FreeAddr); kept across restarts by the caller
	// Log is a file the process's output is appended to, so that a restarted process keeps
	// its earlier log; without it the output goes to Output (nil: discarded).
	Log    string
	Output io.Writer
	// HealthTimeout bounds the wait for /healthz; 0 means 30 s.
	HealthTimeout time.Duration
}

// Process is one running service.
type Process struct {
	Name string
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's, once done is closed
}

// Start starts the binary of s and waits until it answers /healthz. A process that exits
// first, or does not answer within the timeout, or outlives ctx, is killed and reported.
func Start(ctx context.Context, s Spec) (*Process, error) {
	out := s.Output
	var logf *os.File
	if s.Log != "" {
		f, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("%s log: %w", s.Name, err)
		}
		logf, out = f, f
	}
	cmd := exec.Command(s.Bin)
	cmd.Env = append(append([]string(nil), s.Env...), "HTTP_ADDR="+s.Addr)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		if logf != nil {
			logf.Close()
		}
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	p := &Process{Name: s.Name, Addr: s.Addr, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		if logf != nil {
			logf.Close()
		}
		close(p.done)
	}()
	within := s.HealthTimeout
	if within == 0 {
		within = 30 * time.Second
	}
	if err := p.waitHealthy(ctx, within); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

// URL is the base URL of the process's HTTP server.
func (p *Process) URL() string { return "http://" + p.Addr }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitErr is what the process's wait returned; it is meaningful once Done is closed.
func (p *Process) ExitErr() error {
	<-p.done
	return p.err
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// waitHealthy polls /healthz until it answers 200: the process gives no other sign of being
// ready.
func (p *Process) waitHealthy(ctx context.Context, within time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(within)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was healthy: %v", p.Name, p.err)
		default:
		}
		resp, err := client.Get(p.URL() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy within %s: %v", p.Name, within, err)
		}
		select { // poll against the deadline
		case <-p.done:
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", p.Name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Signal sends sig to the process (SIGSTOP freezes it, SIGCONT thaws it).
func (p *Process) Signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s %s: %w", sig, p.Name, err)
	}
	return nil
}

// Kill ends the process with SIGKILL (kill -9) and waits until it is gone.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Stop ends the process with SIGTERM, and SIGKILL if it is still there after grace; it
// reports whether it had to kill. A process that has already exited is left as it is.
func (p *Process) Stop(grace time.Duration) (killed bool) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Process.Signal(syscall.SIGCONT) // a frozen process must run to handle SIGTERM
	select {
	case <-p.done:
		return false
	case <-time.After(grace):
		p.Kill()
		return true
	}
}
