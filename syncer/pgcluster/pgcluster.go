// Package pgcluster makes Postgres clusters of their own, for the tests and runs that must stop,
// crash or configure a real server (a shared one must stay up, and as it is, for everybody else).
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
)

// ErrNoPostgres wraps the error of a machine without initdb, or without a postgres user to run
// it as when running as root, so that callers can skip.
var ErrNoPostgres = errors.New("cannot make a Postgres cluster here")

// Cluster is a Postgres cluster of its own, made with initdb in a temporary directory and run with
// pg_ctl on a free loopback port, so that a test or the chaos run may stop and start a real server
// or give it settings of its own (wal_level=logical). initdb refuses to run as root: as root, the
// cluster is made and run as the postgres user (runuser), in a directory it owns.
type Cluster struct {
	bin, dir, data, port string
	asPG                 bool
	settings             []string
}

// PostgresBinDir finds initdb and pg_ctl: PG_BINDIR, Debian's /usr/lib/postgresql/<n>/bin (the
// newest), or the PATH.
func PostgresBinDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d, nil
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) > 0 {
		version := func(initdb string) int {
			n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
			return n
		}
		sort.Slice(m, func(i, j int) bool { return version(m[i]) > version(m[j]) })
		return filepath.Dir(m[0]), nil
	}
	p, err := exec.LookPath("initdb")
	if err != nil {
		return "", fmt.Errorf("%w: initdb is not installed (apt-get install postgresql, or set PG_BINDIR): %w", ErrNoPostgres, err)
	}
	return filepath.Dir(p), nil
}

// New makes a cluster and starts it with the server settings given as name=value (passed as
// -c name=value on every start); Remove stops and deletes it.
func New(ctx context.Context, settings ...string) (*Cluster, error) {
	bin, err := PostgresBinDir()
	if err != nil {
		return nil, err
	}
	// Not under a test's TempDir: the postgres user must be able to reach the directory.
	dir, err := os.MkdirTemp("", "pgcluster-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, dir: dir, data: filepath.Join(dir, "data"), asPG: os.Geteuid() == 0, settings: settings}
	if c.asPG {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("%w: running as root, and there is no postgres user to run initdb as: %w", ErrNoPostgres, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if out, err := c.run(ctx, "initdb", "-D", c.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("find a free port: %w", err)
	}
	_, c.port, _ = net.SplitHostPort(ln.Addr().String())
	ln.Close()
	if err := c.Start(ctx); err != nil {
		c.Remove()
		return nil, err
	}
	return c, nil
}

// LogFile is the server's log.
func (c *Cluster) LogFile() string { return filepath.Join(c.dir, "postgres.log") }

// AdminURL is a URL of the cluster's postgres database, where callers may create databases.
func (c *Cluster) AdminURL() string {
	return "postgres://postgres@127.0.0.1:" + c.port + "/postgres?sslmode=disable"
}

// Start starts the server and waits until it accepts connections. fsync is off: the server is
// stopped or crashed, never the machine, so the data survives without waiting for the disk.
func (c *Cluster) Start(ctx context.Context) error {
	opts := "-p " + c.port + " -k " + c.dir + " -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
	for _, s := range c.settings {
		opts += " -c " + s
	}
	if out, err := c.run(ctx, "pg_ctl", "-D", c.data, "-l", c.LogFile(), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		return fmt.Errorf("pg_ctl start: %w\n%s", err, out)
	}
	return nil
}

// Stop stops the server: mode fast rolls back what is open and shuts down cleanly, immediate
// ends every process at once, as a crash does, and the next start recovers from the WAL.
func (c *Cluster) Stop(ctx context.Context, mode string) error {
	if out, err := c.run(ctx, "pg_ctl", "-D", c.data, "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %w\n%s", mode, err, out)
	}
	return nil
}

// Remove stops the server at once, if it runs, and deletes the cluster.
func (c *Cluster) Remove() {
	_, _ = c.run(context.Background(), "pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop")
	os.RemoveAll(c.dir)
}

// run runs a program of the Postgres bin directory, as the postgres user when running as root.
func (c *Cluster) run(ctx context.Context, prog string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if c.asPG {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}
