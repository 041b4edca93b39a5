package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"conferencego/bench/stack"
)

// A short run against real binaries and a real Postgres ends with a report, printed and
// written, that has the machine, every operation with both servers' numbers and their ratio,
// and pgbench. It measures nothing worth reading: performance is never asserted here, only
// that every request succeeded and every cell was filled.
func TestShortRunReportsEveryRow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	adminURL := os.Getenv("ADMIN_URL")
	if adminURL == "" {
		adminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	dir := t.TempDir()
	server, err := stack.Build(ctx, dir, stack.Conference)
	if err != nil {
		t.Fatal(err)
	}
	baseline, err := stack.Build(ctx, dir, "bench/cmd/pgxbaseline")
	if err != nil {
		t.Fatal(err)
	}
	o := options{server: server, baseline: baseline, adminURL: adminURL, out: filepath.Join(dir, "out", "bench.md"),
		duration: time.Second, concurrency: 4, seed: 100, rounds: 2}
	var printed bytes.Buffer
	err = run(ctx, o, &printed)
	if errors.Is(err, stack.ErrUnreachable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(o.out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(printed.Bytes(), written) {
		t.Errorf("printed and written reports differ:\n%s\n---\n%s", printed.Bytes(), written)
	}
	report := string(written)
	t.Log(report)
	if !regexp.MustCompile(`Machine: .*nproc \d+, load average [0-9.]+ [0-9.]+ [0-9.]+ at the start and [0-9.]+ [0-9.]+ [0-9.]+ at the end; Postgres \d`).MatchString(report) {
		t.Errorf("no machine line in:\n%s", report)
	}
	if !regexp.MustCompile(`## task bench, \d{4}-\d\d-\d\d \d\d:\d\d UTC`).MatchString(report) {
		t.Errorf("no date in:\n%s", report)
	}
	num, lat := `[1-9]\d*`, `\d+\.\d\d ms`
	for _, op := range []string{
		`GET /api/conferences/\{id\}/`, `GET /api/conferences/\?limit=100 \(100 items\)`,
		`POST /api/conferences/`, `PUT /api/conferences/\{id\}/`,
	} {
		re := regexp.MustCompile(`(?m)^\| ` + op + ` \| ` + num + ` \| ` + lat + ` \| ` + lat + ` \| ` +
			num + ` \| ` + lat + ` \| ` + lat + ` \| \d+\.\d\d× \| 0/0 \|$`)
		if !re.MatchString(report) {
			t.Errorf("no complete row for %s (with no failed request) in:\n%s", op, report)
		}
	}
	if !regexp.MustCompile(`(?m)^\| pgbench -S \(tps, 4 clients, -j 2\) \| \| \| \| [1-9]\d* \|`).MatchString(report) {
		t.Errorf("no pgbench row in:\n%s", report)
	}
	if n := strings.Count(report, "\n|"); n != 2+4+1 {
		t.Errorf("%d table lines, want a header, a rule, 4 operations and pgbench:\n%s", n, report)
	}
}
