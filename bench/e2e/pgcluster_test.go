package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"conferencego/syncer/changeevent"
)

// pgCluster is a Postgres cluster of one test, made with initdb in a temporary directory and
// run with pg_ctl on a free port, so that the test may stop and start a real server (the shared
// server on 5432 must stay up for the other tests). initdb refuses to run as root: as root, the
// cluster is made and run as the postgres user (runuser), in a directory it owns.
type pgCluster struct {
	t    *testing.T
	bin  string // the directory of initdb and pg_ctl
	dir  string
	data string
	port string
	asPG bool
}

// postgresBinDir finds initdb and pg_ctl: PG_BINDIR, Debian's /usr/lib/postgresql/<n>/bin
// (the newest), or the PATH.
func postgresBinDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d, nil
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) > 0 {
		sort.Slice(m, func(i, j int) bool { return versionOf(m[i]) > versionOf(m[j]) })
		return filepath.Dir(m[0]), nil
	}
	p, err := exec.LookPath("initdb")
	if err != nil {
		return "", fmt.Errorf("initdb is not installed (apt-get install postgresql, or set PG_BINDIR): %w", err)
	}
	return filepath.Dir(p), nil
}

func versionOf(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// startPGCluster makes a cluster and starts it; it is stopped (immediately) and removed when t
// ends.
func startPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	bin, err := postgresBinDir()
	if err != nil {
		unavailable(t, err.Error())
	}
	// Not t.TempDir: the postgres user must be able to reach the directory.
	dir, err := os.MkdirTemp("", "e2e-pgcluster-")
	if err != nil {
		t.Fatal(err)
	}
	c := &pgCluster{t: t, bin: bin, dir: dir, data: filepath.Join(dir, "data"), asPG: os.Geteuid() == 0}
	t.Cleanup(func() {
		c.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop")
		if t.Failed() {
			t.Logf("last lines of the Postgres log:\n%s", tailFile(c.logFile(), 30))
		}
		os.RemoveAll(dir)
	})
	if c.asPG {
		u, err := user.Lookup("postgres")
		if err != nil {
			unavailable(t, "running as root, and there is no postgres user to run initdb as: "+err.Error())
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	// fsync off: the test restarts the server cleanly or crashes the postmaster only, never
	// the machine, so the data survives without waiting for the disk.
	if out, err := c.run("initdb", "-D", c.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	_, c.port, _ = net.SplitHostPort(addr)
	c.Start()
	return c
}

func (c *pgCluster) logFile() string { return filepath.Join(c.dir, "postgres.log") }

// run runs a program of the Postgres bin directory, as the postgres user when the test is root.
func (c *pgCluster) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if c.asPG {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

// AdminURL is a URL of the cluster's postgres database, where tests may create databases.
func (c *pgCluster) AdminURL() string {
	return "postgres://postgres@127.0.0.1:" + c.port + "/postgres?sslmode=disable"
}

// Start starts the server and waits until it accepts connections.
func (c *pgCluster) Start() {
	c.t.Helper()
	opts := "-p " + c.port + " -k " + c.dir + " -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
	if out, err := c.run("pg_ctl", "-D", c.data, "-l", c.logFile(), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		c.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, tailFile(c.logFile(), 20))
	}
}

// Stop stops the server: mode fast rolls back what is open and shuts down cleanly, immediate
// ends every process at once, as a crash does, and the next start recovers from the WAL.
func (c *pgCluster) Stop(mode string) {
	c.t.Helper()
	if out, err := c.run("pg_ctl", "-D", c.data, "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		c.t.Fatalf("pg_ctl stop -m %s: %v\n%s", mode, err, out)
	}
}

// reconnectCheck gives the check a new connection after the server went away under the old one.
func (s *system) reconnectCheck() {
	s.t.Helper()
	s.db.Close(context.Background())
	s.db = connect(s.t, s.dbURL)
}

// TestPostgresRestart: the test's own Postgres server is stopped and started twice under a
// stream of writes, once cleanly (pg_ctl stop -m fast) and once as a crash (-m immediate, then
// recovery). Writes fail while it is down; the services reconnect by themselves (none of them
// exits) and the VO table converges.
func TestPostgresRestart(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{push, pull} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			pg := startPGCluster(t)
			s := setup(t, mode, options{adminURL: pg.AdminURL()})
			w := newWorkload(t, s.api, seed(t))
			stop := writeDuring(w, 20)
			for _, how := range []string{"fast", "immediate"} {
				sleepCtx(context.Background(), 3*time.Second)
				pg.Stop(how)
				// Down for 3 s: long enough for every service to notice and to retry.
				sleepCtx(context.Background(), 3*time.Second)
				pg.Start()
			}
			sleepCtx(context.Background(), 3*time.Second)
			n := stop()
			s.reconnectCheck()
			s.AwaitProjection(w.Created(), absenceAllowed)
			t.Logf("%s: %d writes, %d failed while Postgres was down", mode, n, len(w.Errors()))
		})
	}
}

// TestLongSourceTransaction: a transaction at the source changes a conference the way
// api-conference does (row and outbox row) and stays open 30 s (the duration) before it
// bumps the change marker, notifies and commits, while other writes go on. (Holding the marker
// slot's lock for 30 s would make every other write of that slot wait, and fail.) Nothing of it is visible until it commits; then it
// arrives, late: the syncer's lag metric (push: relay_publish_lag_seconds, whose observations
// start at the change; pull: api-attendee's attendee_internal_lag_seconds) shows the 30 s, and
// nothing is lost. In pull mode the other writes may wait behind the open transaction, since
// the change feed hands over in commit order only what is safely before every open one.
func TestLongSourceTransaction(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{push, pull} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := setup(t, mode, options{})
			w := newWorkload(t, s.api, seed(t))
			ids := createMany(t, s, w, 3)
			s.AwaitProjection(w.Created(), absenceAllowed)

			// Renames would wait for the held row's lock, and fail after api-conference's timeout.
			w.noRenames = true
			held := beginOutboxChange(t, s.dbURL, ids[0], "Held open")
			stop := writeDuring(w, 10)
			sleepCtx(context.Background(), 30*time.Second)
			n := stop()
			held.CommitWithMarker(t)
			requireNoWriteErrors(t, w)
			s.AwaitProjection(w.Created(), absenceAllowed)
			v, err := s.readVO(ids[0])
			if err != nil {
				t.Fatal(err)
			}
			if v == nil || v.Name != "Held open" || v.Version != held.version {
				t.Fatalf("the held change is not in the copy: VO %v, want version %d", v, held.version)
			}
			metric, url := "relay_publish_lag_seconds", s.syncers[0].URL()+"/metrics"
			if mode == pull {
				metric, url = "attendee_internal_lag_seconds", s.attendees[0].URL()+"/metrics"
			}
			// The held change took 30 s or more from its change (now() of its transaction) to the
			// copy: at least one observation lies above every bucket of 20 s or less.
			if count, le20 := metricSum(t, url, metric+"_count"), histogramBucket(t, url, metric, 20); count-le20 < 1 {
				t.Errorf("%s: %v observations, %v of them at most 20 s: the held change's lag does not show", metric, count, le20)
			}
			t.Logf("%s: %d writes during the 30 s; %s mean %.2f s", mode, n, metric, histogramMean(t, url, metric))
		})
	}
}

// histogramBucket is the cumulative count of the histogram name's largest bucket whose upper
// bound is at most le.
func histogramBucket(t *testing.T, url, name string, le float64) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	best, bestLE := 0.0, -1.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"_bucket{") {
			continue
		}
		_, rest, _ := strings.Cut(line, `le="`)
		bound, _, _ := strings.Cut(rest, `"`)
		b, err := strconv.ParseFloat(bound, 64)
		if err != nil || b > le || b < bestLE {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		best, bestLE = v, b
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return best
}

// TestNotifyStorm (push): another client sends NOTIFY on the relay's channel as fast as it can
// (8 connections in a loop) while the workload writes. The relay takes a notification as a
// wake-up only, so a storm costs it empty claims but loses and duplicates nothing: the copy
// converges strictly. The source's commit time (an API update's round trip) is measured with
// and without the storm and logged, never asserted: the machine is shared.
func TestNotifyStorm(t *testing.T) {
	t.Parallel()
	s := setup(t, push, options{})
	w := newWorkload(t, s.api, seed(t))
	ids := createMany(t, s, w, 8)
	s.AwaitProjection(w.Created(), tombstoneRequired)
	metrics := s.syncers[0].URL() + "/metrics"
	quiet := commitTimes(t, s, ids, 60)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	for range 8 {
		conn, err := pgx.Connect(context.Background(), s.dbURL)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer conn.Close(context.Background())
			n := 0
			for ctx.Err() == nil {
				if _, err := conn.Exec(ctx, "SELECT pg_notify($1, '')", changeevent.NotifyChannel); err != nil {
					break
				}
				n++
			}
			mu.Lock()
			sent += n
			mu.Unlock()
		})
	}
	batches0 := metricSum(t, metrics, "relay_batches_total")
	stormStart := time.Now()
	storm := commitTimes(t, s, ids, 60)
	stop := writeDuring(w, 20)
	sleepCtx(context.Background(), 3*time.Second)
	stop()
	cancel()
	wg.Wait()
	stormFor := time.Since(stormStart)
	requireNoWriteErrors(t, w)
	s.AwaitProjection(w.Created(), tombstoneRequired)
	t.Logf("NOTIFY storm: %d notifications in %s (%.0f/s), %v relay batches", sent, stormFor.Round(time.Millisecond),
		float64(sent)/stormFor.Seconds(), metricSum(t, metrics, "relay_batches_total")-batches0)
	t.Logf("update round trip without the storm: p50 %s p95 %s; with it: p50 %s p95 %s",
		quantile(quiet, 0.5), quantile(quiet, 0.95), quantile(storm, 0.5), quantile(storm, 0.95))
}

// commitTimes makes n updates, one at a time, of the conferences ids through the API and
// returns how long each took.
func commitTimes(t *testing.T, s *system, ids []int64, n int) []time.Duration {
	t.Helper()
	ctx := context.Background()
	out := make([]time.Duration, 0, n)
	for i := range n {
		start := time.Now()
		if _, err := s.api.updateConference(ctx, ids[i%len(ids)], map[string]any{"name": fmt.Sprintf("Timed %d", i)}); err != nil {
			t.Fatal(err)
		}
		out = append(out, time.Since(start))
	}
	return out
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(q*float64(len(s))))].Round(10 * time.Microsecond)
}
