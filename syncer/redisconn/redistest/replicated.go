package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Replicated is a primary with one replica that reaches it through a forwarder the test
// controls, so that it can let writes reach the primary and not the replica — the state in
// which a failover loses acknowledged writes.
type Replicated struct {
	Primary, Replica *Server
	fwd              *forwarder
}

// StartReplicated starts a primary and a replica of it, and returns once the replica is in
// sync.
func StartReplicated(tb testing.TB) *Replicated {
	tb.Helper()
	primary := StartServer(tb)
	fwd := startForwarder(tb, primary.Addr)
	fwdHost, fwdPort, _ := net.SplitHostPort(fwd.addr())
	// The replica announces its own listening port (REPLCONF listening-port, the default), not
	// the forwarder's: that is the address Sentinel reads from the primary's INFO and promotes.
	replica := StartServer(tb, func(o *serverOptions) {
		o.extra = func(testing.TB) []string {
			return []string{"--replicaof", fwdHost, fwdPort, "--replica-announce-ip", "127.0.0.1"}
		}
	})
	r := &Replicated{Primary: primary, Replica: replica, fwd: fwd}
	rdb := redis.NewClient(&redis.Options{Addr: primary.Addr, MaxRetries: -1})
	defer rdb.Close()
	want := "ip=127.0.0.1,port=" + replica.Port() + ",state=online"
	err := poll(10*time.Second, nil, func(ctx context.Context) error {
		f, err := info(ctx, rdb, "replication")
		if err != nil {
			return err
		}
		if !strings.HasPrefix(f["slave0"], want) {
			return fmt.Errorf("primary's slave0 is %q, want %s…", f["slave0"], want)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("replica %s in sync with primary %s: %v", replica.Addr, primary.Addr, err)
	}
	return r
}

// PauseReplication stops the bytes between primary and replica in both directions, holding
// what was read; the TCP connection stays open, so both ends (and Sentinel) still see a
// healthy link until repl-timeout (60s).
func (r *Replicated) PauseReplication() { r.fwd.pause() }

// ResumeReplication lets the held bytes and what follows through again.
func (r *Replicated) ResumeReplication() { r.fwd.resume() }

// forwarder relays TCP connections from its listener to target; pause holds the bytes.
type forwarder struct {
	ln     net.Listener
	target string
	closed chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	open  chan struct{} // closed while bytes may flow; a fresh one while paused
	conns map[net.Conn]struct{}
}

func startForwarder(tb testing.TB, target string) *forwarder {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen for the replication forwarder: %v", err)
	}
	f := &forwarder{ln: ln, target: target, closed: make(chan struct{}), open: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(f.open)
	f.wg.Add(1)
	go f.accept()
	tb.Cleanup(f.close)
	return f
}

func (f *forwarder) addr() string { return f.ln.Addr().String() }

func (f *forwarder) accept() {
	defer f.wg.Done()
	for {
		down, err := f.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", f.target, time.Second)
		if err != nil {
			down.Close()
			continue
		}
		if !f.track(down, up) {
			return
		}
		f.wg.Add(2)
		go f.pump(up, down)
		go f.pump(down, up)
	}
}

// track records the pair for close, or closes them if the forwarder already closed.
func (f *forwarder) track(conns ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.closed:
		for _, c := range conns {
			c.Close()
		}
		return false
	default:
	}
	for _, c := range conns {
		f.conns[c] = struct{}{}
	}
	return true
}

// pump copies src to dst. Each chunk read waits for the gate before it is written, so a pause
// holds bytes already read and, with the buffer full, stops reading.
func (f *forwarder) pump(dst, src net.Conn) {
	defer f.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			f.mu.Lock()
			gate := f.open
			f.mu.Unlock()
			select {
			case <-gate:
			case <-f.closed:
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (f *forwarder) pause() {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.open:
		f.open = make(chan struct{})
	default:
	}
}

func (f *forwarder) resume() {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.open:
	default:
		close(f.open)
	}
}

func (f *forwarder) close() {
	f.mu.Lock()
	close(f.closed)
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.ln.Close()
	f.wg.Wait()
}

// Sentinel is a redis-sentinel process watching one primary.
type Sentinel struct {
	*Server
	MasterName string
}

// StartSentinel starts a Sentinel that alone decides (quorum 1) to fail primary over after it
// stops answering for five seconds, and returns once the Sentinel knows every replica the primary
// has and hears from each of them.
func StartSentinel(tb testing.TB, primary *Server, masterName string) *Sentinel {
	tb.Helper()
	s := startProcess(tb, func(s *Server) []string {
		host, port, _ := net.SplitHostPort(s.Addr)
		conf := filepath.Join(s.dir, "sentinel.conf") // Sentinel rewrites it, so it must be a file of its own
		text := strings.Join([]string{
			"bind " + host, "port " + port, "dir " + s.dir, "logfile " + s.logFile(), "protected-mode no",
			fmt.Sprintf("sentinel monitor %s 127.0.0.1 %s 1", masterName, primary.Port()),
			// Five seconds, not one: on a loaded two-core machine a live primary can miss
			// seconds of pings (three were once not enough, at a load of 12), and a failover
			// the test did not ask for spoils its setup.
			"sentinel down-after-milliseconds " + masterName + " 5000",
			"sentinel failover-timeout " + masterName + " 3000",
			"sentinel parallel-syncs " + masterName + " 1",
		}, "\n") + "\n"
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			tb.Fatalf("write %s: %v", conf, err)
		}
		return []string{conf, "--sentinel"}
	})
	sentinel := &Sentinel{Server: s, MasterName: masterName}
	prdb := redis.NewClient(&redis.Options{Addr: primary.Addr, MaxRetries: -1})
	defer prdb.Close()
	srdb := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer srdb.Close()
	err := poll(15*time.Second, nil, func(ctx context.Context) error {
		f, err := info(ctx, prdb, "replication")
		if err != nil {
			return err
		}
		replicas, err := srdb.Replicas(ctx, masterName).Result()
		if err != nil {
			return err
		}
		if n := f["connected_slaves"]; fmt.Sprint(len(replicas)) != n {
			return fmt.Errorf("Sentinel knows %d replicas, the primary has %s", len(replicas), n)
		}
		for _, r := range replicas {
			if r["master-link-status"] != "ok" || strings.Contains(r["flags"], "disconnected") {
				return fmt.Errorf("Sentinel sees replica %s:%s as %s, link %s", r["ip"], r["port"], r["flags"], r["master-link-status"])
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("Sentinel %s watching %s: %v", s.Addr, primary.Addr, err)
	}
	return sentinel
}

// URL is the REDIS_URL of sentinel mode for this Sentinel.
func (s *Sentinel) URL() string { return "redis://" + s.Addr + "?master_name=" + s.MasterName }

// WaitForPrimary waits until the Sentinel names addr as the primary, as after a failover.
func (s *Sentinel) WaitForPrimary(tb testing.TB, addr string, limit time.Duration) {
	tb.Helper()
	srdb := redis.NewSentinelClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer srdb.Close()
	err := poll(limit, nil, func(ctx context.Context) error {
		got, err := srdb.GetMasterAddrByName(ctx, s.MasterName).Result()
		if err != nil {
			return err
		}
		if len(got) != 2 || net.JoinHostPort(got[0], got[1]) != addr {
			return fmt.Errorf("Sentinel names %v as primary", got)
		}
		return nil
	})
	if err != nil {
		log, _ := os.ReadFile(s.logFile())
		tb.Fatalf("Sentinel promotes %s: %v; Sentinel log: %s", addr, err, tail(log))
	}
}
