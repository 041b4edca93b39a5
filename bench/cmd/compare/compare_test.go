package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"conferencego/bench/stack"
)

func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// buildBinaries builds the three services as `task build` does.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range stack.Services {
		if _, err := stack.Build(context.Background(), dir, name); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestCompareSmallRun runs the whole comparison at CI size and checks the report's
// invariants: nothing lost in any mode, every change measured, and outputs that parse.
func TestCompareSmallRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three services per mode")
	}
	o := options{
		rate: 40, duration: 2 * time.Second, idle: time.Second, settle: 0, drain: 60 * time.Second,
		mixText: "create=30,update=50,delete=20", seed: 7, initial: 10, workers: 8,
		out: t.TempDir(),
	}
	servers(t, &o)
	var err error
	if o.mix, err = parseMix(o.mixText); err != nil {
		t.Fatal(err)
	}
	// push-logical moves the run to a cluster of its own with wal_level=logical (the shared
	// server runs with replica), every mode with it.
	if o.modes, err = parseModes("push,push-logical,pull:200ms,list:200ms"); err != nil {
		t.Fatal(err)
	}
	o.binDir = buildBinaries(t)

	var stdout, progress bytes.Buffer
	if err := run(context.Background(), o, &stdout, &progress); err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	written := len(plan(o.seed, o.rate, o.duration, o.mix, o.initial))

	table := stdout.String()
	for _, want := range []string{"| push |", "| push (logical) |", "| pull 200ms |", "lag p50", "idle requests/min"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	md, err := os.ReadFile(filepath.Join(o.out, "compare.md"))
	if err != nil || string(md) != table {
		t.Errorf("compare.md differs from what was printed (%v)", err)
	}

	f, err := os.Open(filepath.Join(o.out, "lags.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("lags.csv does not parse: %v", err)
	}
	perMode := map[string]int{}
	for _, row := range rows[1:] {
		perMode[row[0]]++
		if row[7] == "lost" {
			t.Errorf("lost change: %v", row)
		}
		if row[7] == "applied" {
			if lag, err := strconv.ParseFloat(row[6], 64); err != nil || lag < 0 {
				t.Errorf("bad lag in %v", row)
			}
		}
	}
	for _, m := range []string{"push", "push (logical)", "pull 200ms"} {
		// Every write is one change at the source, and every change is measured.
		if perMode[m] != written {
			t.Errorf("%s: %d changes measured, %d written", m, perMode[m], written)
		}
	}

	svg, err := os.ReadFile(filepath.Join(o.out, "lags.svg"))
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("lags.svg is not XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Errorf("lags.svg's root element is %q", root)
	}
}

func TestPlanIsDeterministicAndKeepsConferencesAlive(t *testing.T) {
	t.Parallel()
	m := mix{create: 10, update: 10, delete: 80}
	a, b := plan(3, 100, 5*time.Second, m, 10), plan(3, 100, 5*time.Second, m, 10)
	if len(a) != 500 || len(b) != 500 {
		t.Fatalf("%d and %d ops, want 500", len(a), len(b))
	}
	live := map[int]bool{}
	for i := range 10 {
		live[i] = true
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("op %d differs between two plans with one seed: %+v %+v", i, a[i], b[i])
		}
		switch a[i].kind {
		case opCreate:
			live[a[i].logical] = true
		case opUpdate, opDelete:
			if !live[a[i].logical] {
				t.Fatalf("op %d touches conference %d, which is not alive", i, a[i].logical)
			}
			if a[i].kind == opDelete {
				delete(live, a[i].logical)
			}
		}
		if len(live) < minLive {
			t.Fatalf("only %d conferences alive after op %d", len(live), i)
		}
	}
	if c := plan(4, 100, 5*time.Second, m, 10); c[0] == a[0] && c[1] == a[1] && c[2] == a[2] && c[3] == a[3] {
		t.Error("another seed gives the same plan")
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	if _, err := parseMix("create=1,update=x"); err == nil {
		t.Error("bad mix accepted")
	}
	if _, err := parseMix("create=0,update=0,delete=0"); err == nil {
		t.Error("all-zero mix accepted")
	}
	if m, err := parseModes("push,pull:1s,list:250ms,push-logical"); err != nil || len(m) != 4 || m[2].name() != "pull (list) 250ms" || !m[2].list ||
		!m[3].logical || m[3].name() != "push (logical)" {
		t.Errorf("parseModes: %v %v", m, err)
	}
	if _, err := parseModes("pull"); err == nil {
		t.Error("pull without an interval accepted")
	}
	if env, err := parseEnv(" SYNC_OUTBOX_POLL=2ms, SYNC_RELAY_LINGER=500us"); err != nil || strings.Join(env, " ") != "SYNC_OUTBOX_POLL=2ms SYNC_RELAY_LINGER=500us" {
		t.Errorf("parseEnv: %v %v", env, err)
	}
	if env, err := parseEnv(""); err != nil || env != nil {
		t.Errorf("parseEnv of nothing: %v %v", env, err)
	}
	for _, bad := range []string{"SYNC_OUTBOX_POLL", "=2ms", "A=1,,B=2"} {
		if _, err := parseEnv(bad); err == nil {
			t.Errorf("parseEnv(%q) accepted", bad)
		}
	}
	if w, err := parseWriters("1, 8,32"); err != nil || len(w) != 3 || w[2] != 32 {
		t.Errorf("parseWriters: %v %v", w, err)
	}
	for _, bad := range []string{"0", "x", "1,,2"} {
		if _, err := parseWriters(bad); err == nil {
			t.Errorf("parseWriters(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"commit", "none,fast", "none,none+linger", "none,poll,poll"} {
		if _, err := parseCommitConfigs(bad); err == nil {
			t.Errorf("parseCommitConfigs(%q) accepted", bad)
		}
	}
}

func TestCommitConfigsSetTheirVariables(t *testing.T) {
	t.Parallel()
	cs, err := parseCommitConfigs("none,commit,after,poll,poll+linger,after+linger,logical")
	if err != nil {
		t.Fatal(err)
	}
	o := options{syncerEnv: []string{"LOG_LEVEL=debug"}, conferenceEnv: []string{"X=1"},
		commit: commitOptions{poll: 2 * time.Millisecond, linger: 500 * time.Microsecond}}
	want := map[string][2]string{
		"none":         {"X=1 OUTBOX_NOTIFY=off", "LOG_LEVEL=debug"},
		"commit":       {"X=1 OUTBOX_NOTIFY=commit", "LOG_LEVEL=debug"},
		"after":        {"X=1 OUTBOX_NOTIFY=after", "LOG_LEVEL=debug"},
		"poll":         {"X=1 OUTBOX_NOTIFY=off", "LOG_LEVEL=debug SYNC_OUTBOX_POLL=2ms"},
		"poll+linger":  {"X=1 OUTBOX_NOTIFY=off", "LOG_LEVEL=debug SYNC_OUTBOX_POLL=2ms SYNC_RELAY_LINGER=500µs"},
		"after+linger": {"X=1 OUTBOX_NOTIFY=after", "LOG_LEVEL=debug SYNC_RELAY_LINGER=500µs"},
		"logical": {"X=1 OUTBOX_NOTIFY=off OUTBOX_TRANSPORT=logical OUTBOX_SLOT=compare_slot",
			"LOG_LEVEL=debug SYNC_OUTBOX_TRANSPORT=logical SYNC_SLOT=compare_slot"},
	}
	for _, c := range cs {
		conf, sync := c.env(o, "compare_slot")
		if got := [2]string{strings.Join(conf, " "), strings.Join(sync, " ")}; got != want[c.name] {
			t.Errorf("%s: %q, want %q", c.name, got, want[c.name])
		}
		if c.sync != (c.name != "none") {
			t.Errorf("%s: runs the syncer: %v", c.name, c.sync)
		}
	}
}

// TestCommitSmallRun runs -commit at CI size: every configuration measured at every number of
// writers, nothing lost, and the table and its file agree.
func TestCommitSmallRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three services and restarts two of them per configuration")
	}
	o := options{
		duration: time.Second, drain: 60 * time.Second, initial: 10, workers: 2,
		out:    t.TempDir(),
		commit: commitOptions{on: true, writers: []int{1, 2}, repeat: 1, poll: 2 * time.Millisecond, linger: time.Millisecond},
	}
	servers(t, &o)
	var err error
	if o.commit.configs, err = parseCommitConfigs("none,commit,poll+linger,logical"); err != nil {
		t.Fatal(err)
	}
	o.binDir = buildBinaries(t)
	var stdout, progress bytes.Buffer
	if err := run(context.Background(), o, &stdout, &progress); err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	table := stdout.String()
	for _, want := range []string{"| 1 | none |", "| 2 | commit |", "| 2 | poll+linger |", "| poll+linger |", "| 2 | logical |"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	for _, line := range strings.Split(table, "\n") {
		cols := strings.Split(line, "|")
		if lost := strings.TrimSpace(cols[min(len(cols)-1, 14)]); len(cols) == 17 && lost != "0" && lost != "lost" && lost != "---:" {
			t.Errorf("changes lost: %s", line)
		}
	}
	md, err := os.ReadFile(filepath.Join(o.out, "commit.md"))
	if err != nil || string(md) != table {
		t.Errorf("commit.md differs from what was printed (%v)", err)
	}
}

// servers points o at the test's Postgres and Redis (TEST_DATABASE_URL, TEST_REDIS_URL, or the
// local defaults) and skips, or fails in CI, when Postgres does not answer.
func servers(t *testing.T, o *options) {
	t.Helper()
	o.adminURL, o.redisURL = os.Getenv("TEST_DATABASE_URL"), os.Getenv("TEST_REDIS_URL")
	if o.adminURL == "" {
		o.adminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	if o.redisURL == "" {
		o.redisURL = "redis://127.0.0.1:6379/0"
	}
	if conn, err := pgx.Connect(context.Background(), o.adminURL); err != nil {
		unavailable(t, "Postgres is not reachable at %s: %v", o.adminURL, err)
	} else {
		conn.Close(context.Background())
	}
}
