package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"conferencego/httpedge"
	"conferencego/syncer/redisconn"
)

// collectorFixture is a stream of three entries with one group (one entry acked, one
// delivered and not acked, one not delivered), one dead letter, and a database whose
// outbox_backlog answers 4.
func collectorFixture(t *testing.T) (*streamCollector, string) {
	t.Helper()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { rdb.Close() })
	if err := rdb.Ping(ctx).Err(); err != nil {
		unavailable(t, "Redis is not reachable on 127.0.0.1:6379: %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	stream := "test.status." + hex.EncodeToString(b)
	keys := redisconn.Keys(stream)
	t.Cleanup(func() { rdb.Del(context.Background(), keys.Stream, keys.DeadLetter) })
	for range 3 {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"k", "v"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.XGroupCreate(ctx, stream, "g", "0").Err(); err != nil {
		t.Fatal(err)
	}
	got, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{stream, ">"}, Count: 2}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.XAck(ctx, stream, "g", got[0].Messages[0].ID).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.DeadLetter, Values: []string{"reason", "test"}}).Err(); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, newDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	// api-conference's migration 0008 makes the real function (its tests check it); the
	// collector only needs one by that name.
	if _, err := pool.Exec(ctx, "CREATE FUNCTION outbox_backlog(cap integer) RETURNS bigint LANGUAGE sql AS 'SELECT 4::bigint'"); err != nil {
		t.Fatal(err)
	}
	return newStreamCollector(rdb, pool, stream, ""), stream
}

func TestStreamCollectorReadsThePushPath(t *testing.T) {
	t.Parallel()
	c, _ := collectorFixture(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	st, err := httpedge.ReadStatus(httpedge.StatusConfig{Gatherer: reg, Metrics: statusMetrics})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"relay_stream_length": 3, "relay_stream_pending": 1, "relay_stream_group_lag": 1,
		"relay_dead_letters": 1, "relay_outbox_backlog": 4,
	}
	for name, v := range want {
		f, ok := st.Metrics[name]
		if !ok || f.Type != "gauge" || f.Value == nil || *f.Value != v {
			t.Errorf("%s = %+v, want gauge %v", name, f, v)
		}
	}
}

// With the logical transport the collector says how much WAL the slot keeps (here a physical
// slot stands in, since the shared server cannot decode: the figure is the same for both).
func TestStreamCollectorReadsTheSlot(t *testing.T) {
	t.Parallel()
	c, _ := collectorFixture(t)
	ctx := context.Background()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	c.slot = "test_status_" + hex.EncodeToString(b)
	if _, err := c.pool.Exec(ctx, "SELECT pg_create_physical_replication_slot($1, true)", c.slot); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.pool.Exec(context.Background(), "SELECT pg_drop_replication_slot($1)", c.slot) })
	if _, err := c.pool.Exec(ctx, "CREATE TABLE filler AS SELECT g FROM generate_series(1, 10000) AS g"); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	st, err := httpedge.ReadStatus(httpedge.StatusConfig{Gatherer: reg, Metrics: statusMetrics})
	if err != nil {
		t.Fatal(err)
	}
	if f := st.Metrics["relay_slot_wal_bytes"]; f.Type != "gauge" || f.Value == nil || *f.Value < 100_000 {
		t.Errorf("relay_slot_wal_bytes = %+v after 10,000 rows written; want the WAL since the slot was made", f)
	}
	// On the table transport there is no slot, and no such figure.
	noSlot := *c
	noSlot.slot = ""
	reg = prometheus.NewRegistry()
	reg.MustRegister(&noSlot)
	if st, err = httpedge.ReadStatus(httpedge.StatusConfig{Gatherer: reg, Metrics: statusMetrics}); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Metrics["relay_slot_wal_bytes"]; ok {
		t.Error("a collector without a slot reported relay_slot_wal_bytes")
	}
}

func TestStreamCollectorWithRedisDownLeavesOutRedisFigures(t *testing.T) {
	t.Parallel()
	c, _ := collectorFixture(t)
	c.rdb = redis.NewClient(&redis.Options{Addr: freeAddr(t), MaxRetries: -1})
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	// /metrics must keep answering: a failed collector would make promhttp answer 500.
	if _, err := reg.Gather(); err != nil {
		t.Errorf("gather with Redis down: %v", err)
	}
	st, err := httpedge.ReadStatus(httpedge.StatusConfig{Gatherer: reg, Metrics: statusMetrics})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Metrics["relay_stream_length"]; ok {
		t.Error("a stream length was reported although Redis is down")
	}
	if f := st.Metrics["relay_outbox_backlog"]; f.Value == nil || *f.Value != 4 {
		t.Errorf("relay_outbox_backlog = %+v: the database still answers", f)
	}
}

func TestEmptyStreamIsZeroNotAnError(t *testing.T) {
	t.Parallel()
	c, _ := collectorFixture(t)
	c.keys = redisconn.Keys("test.status.never." + hex.EncodeToString([]byte(t.Name())))
	n, err := c.streamLength(context.Background(), c.keys.Stream)
	if err != nil || n != 0 {
		t.Errorf("length of a stream nobody wrote: %v, %v", n, err)
	}
	p, l, err := c.groups(context.Background())
	if err != nil || p != 0 || l != 0 {
		t.Errorf("groups of a stream nobody wrote: %v %v, %v", p, l, err)
	}
}

func TestStatusRouteAnswersCORSAndPassesTheRestOn(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(withStatus(next, reg, "pull", []string{"http://localhost:3000"}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/status", nil)
	req.Header.Set("Origin", "http://localhost:3000")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var st httpedge.StatusBody
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || st.Service != "syncer" || st.Mode != "pull" {
		t.Errorf("GET /status: %d %+v %v", resp.StatusCode, st, err)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "http://localhost:3000" {
		t.Errorf("Access-Control-Allow-Origin %q", got)
	}
	resp, err = http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot {
		t.Errorf("GET /healthz: %d, want it passed on", resp.StatusCode)
	}
}
