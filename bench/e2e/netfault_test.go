package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"conferencego/syncer/changeevent"
	"conferencego/syncer/redisconn"
)

// The tests of this file put faults of a network between the services and what they talk to:
// github.com/Shopify/toxiproxy/v2, embedded in the test binary (no toxiproxy server to install
// or to start), proxies the services' links to Redis, to Postgres and to api-conference's HTTP
// port, and adds latency, blackholes, resets and cut responses on them. The test's own
// connections (the check's, s.rdb) go straight to the servers, so that the check sees the truth.

// faultProxy is one toxiproxy proxy on a free loopback port in front of upstream.
type faultProxy struct {
	t *testing.T
	p *toxiproxy.Proxy
}

// netFaults are the proxies of one system (options.netFaults): every link of api-attendee and
// of the syncer to Redis, api-attendee's and the syncer's to Postgres (a proxy each, so that a
// fault can hit one service only), and the syncer's to api-conference.
type netFaults struct {
	srv                  *toxiproxy.ApiServer
	redis                *faultProxy // nil in pull mode
	attendeeDB, syncerDB *faultProxy
	conference           *faultProxy
}

func newNetFaults(t *testing.T) *netFaults {
	t.Helper()
	return &netFaults{srv: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())}
}

// proxy starts a proxy in front of upstream (host:port); it stops when t ends.
func (n *netFaults) proxy(t *testing.T, name, upstream string) *faultProxy {
	t.Helper()
	p := toxiproxy.NewProxy(n.srv, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("start the %s proxy: %v", name, err)
	}
	t.Cleanup(p.Stop)
	return &faultProxy{t: t, p: p}
}

// Addr is where the proxy listens.
func (f *faultProxy) Addr() string { return f.p.Listen }

// via returns rawURL (a redis:// or postgres:// URL) with its host replaced by the proxy's.
func (f *faultProxy) via(rawURL string) string {
	f.t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		f.t.Fatal(err)
	}
	u.Host = f.Addr()
	return u.String()
}

// Add adds the toxic typ on stream ("upstream": towards the server, "downstream": towards the
// client) of every connection, those open and those to come, until Remove.
func (f *faultProxy) Add(name, typ, stream string, attrs map[string]any) {
	f.t.Helper()
	b, err := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": 1.0, "attributes": attrs})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.p.Toxics.AddToxicJson(strings.NewReader(string(b))); err != nil {
		f.t.Fatalf("add toxic %s to the %s proxy: %v", name, f.p.Name, err)
	}
}

// Remove removes the toxic name.
func (f *faultProxy) Remove(name string) {
	f.t.Helper()
	if err := f.p.Toxics.RemoveToxic(context.Background(), name); err != nil {
		f.t.Fatalf("remove toxic %s from the %s proxy: %v", name, f.p.Name, err)
	}
}

// Down closes every connection through the proxy and refuses new ones, as a host that went away
// does; Up listens again on the same port.
func (f *faultProxy) Down() { f.p.Stop() }

// Up starts the proxy again after Down.
func (f *faultProxy) Up() {
	f.t.Helper()
	if err := f.p.Start(); err != nil {
		f.t.Fatalf("start the %s proxy again on %s: %v", f.p.Name, f.p.Listen, err)
	}
}

// route points the environment of a service (binAttendee or binSyncer) at the proxies.
func (n *netFaults) route(s *system, bin string, env map[string]string) {
	t := s.t
	t.Helper()
	dbHost := hostOf(t, s.dbURL)
	switch bin {
	case binAttendee:
		if n.attendeeDB == nil {
			n.attendeeDB = n.proxy(t, "attendee-postgres", dbHost)
		}
		env["DATABASE_URL"] = n.attendeeDB.via(s.dbURL)
	case binSyncer:
		if _, ok := env["DATABASE_URL"]; ok {
			if n.syncerDB == nil {
				n.syncerDB = n.proxy(t, "syncer-postgres", dbHost)
			}
			env["DATABASE_URL"] = n.syncerDB.via(s.dbURL)
		}
		if n.conference == nil {
			n.conference = n.proxy(t, "conference-http", s.conference.Addr)
		}
		env["CONFERENCE_URL"] = "http://" + n.conference.Addr()
	}
	if _, ok := env["REDIS_URL"]; ok && s.redis != nil {
		if n.redis == nil {
			n.redis = n.proxy(t, "redis", s.redis.Addr)
		}
		env["REDIS_URL"] = n.redis.via(s.redisURL)
	}
}

func hostOf(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// streamDuplicates reads the whole stream and counts entries that repeat an event already in it
// (the same event id): what a retried pipeline leaves behind, which the consumer's
// idempotent apply absorbs.
func streamDuplicates(t *testing.T, s *system) (entries, duplicates int) {
	t.Helper()
	msgs, err := s.rdb.XRange(context.Background(), s.stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		e, err := changeevent.Decode(m.Values)
		if err != nil {
			continue // the epoch marker and other entries that are no event
		}
		entries++
		if seen[e.ID] {
			duplicates++
		}
		seen[e.ID] = true
	}
	return entries, duplicates
}

// histogramMean is the mean of the Prometheus histogram name at url since the process started.
func histogramMean(t *testing.T, url, name string) float64 {
	t.Helper()
	n := metricSum(t, url, name+"_count")
	if n == 0 {
		return 0
	}
	return metricSum(t, url, name+"_sum") / n
}

// histogramMeanSince is the mean of the observations of name made since the sums were sum0 and
// count0.
func histogramMeanSince(t *testing.T, url, name string, sum0, count0 float64) float64 {
	t.Helper()
	n := metricSum(t, url, name+"_count") - count0
	if n == 0 {
		return 0
	}
	return (metricSum(t, url, name+"_sum") - sum0) / n
}

// goroutines is the process's go_goroutines.
func goroutines(t *testing.T, p *proc) float64 {
	t.Helper()
	return metricSum(t, p.URL()+"/metrics", "go_goroutines")
}

// awaitGoroutinesBack waits until p runs no more than slack goroutines above before: what it
// started for the outage (retries, dials, timers) must end with it.
func awaitGoroutinesBack(t *testing.T, p *proc, before, slack float64) {
	t.Helper()
	var now float64
	awaitCondition(t, 30*time.Second, fmt.Sprintf("%s back to at most %v+%v goroutines", p.name, before, slack), func() bool {
		now = goroutines(t, p)
		return now <= before+slack
	})
	t.Logf("%s: %v goroutines before the outage, %v after", p.name, before, now)
}

// writeDuring runs the workload in the background at rate writes/s until stop is called, which
// waits for the writers and returns how many writes were made.
func writeDuring(w *workload, rate float64) (stop func() int) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, 1_000_000, 4, rate)
	}()
	return func() int {
		cancel()
		<-done
		return w.Writes()
	}
}

// TestNetRedisLatency (push): 100 ± 50 ms of round-trip time on every link to Redis (50 ± 25 ms
// each way) during a stream of writes. Nothing fails (no write, no relay error) and the copy
// converges; the rise of the publish lag, about one RTT per XADD pipeline, is logged.
func TestNetRedisLatency(t *testing.T) {
	t.Parallel()
	s := setup(t, push, options{netFaults: true})
	w := newWorkload(t, s.api, seed(t))
	metrics := s.syncers[0].URL() + "/metrics"
	// Durations: 8 s of writes at 30/s each side; the issue names no duration.
	stop := writeDuring(w, 30)
	sleepCtx(context.Background(), 4*time.Second)
	stop()
	s.AwaitProjection(w.Created(), tombstoneRequired)
	lagBefore := histogramMean(t, metrics, "relay_publish_lag_seconds")
	errs0 := metricSum(t, metrics, "relay_errors_total")
	sum0, count0 := metricSum(t, metrics, "relay_publish_lag_seconds_sum"), metricSum(t, metrics, "relay_publish_lag_seconds_count")

	s.net.redis.Add("latency-up", "latency", "upstream", map[string]any{"latency": 50, "jitter": 25})
	s.net.redis.Add("latency-down", "latency", "downstream", map[string]any{"latency": 50, "jitter": 25})
	stop = writeDuring(w, 30)
	sleepCtx(context.Background(), 8*time.Second)
	n := stop()
	s.AwaitProjection(w.Created(), tombstoneRequired)
	lagDuring := histogramMeanSince(t, metrics, "relay_publish_lag_seconds", sum0, count0)
	s.net.redis.Remove("latency-up")
	s.net.redis.Remove("latency-down")

	requireNoWriteErrors(t, w)
	if d := metricSum(t, metrics, "relay_errors_total") - errs0; d != 0 {
		t.Errorf("relay_errors_total rose by %v under latency alone; want no errors", d)
	}
	t.Logf("%d writes; mean publish lag %.0f ms without latency, %.0f ms with 100±50 ms RTT",
		n, lagBefore*1000, lagDuring*1000)
}

// TestNetRedisBlackholed (push): Redis answers nothing for 20 s (the duration): every
// byte to and from it is dropped, connections stay open, new ones are accepted and then hear
// nothing. The Redis clients' read timeouts must fire: api-attendee's consumer counts failed
// rounds (attendee_consumer_retries_total rises), so it does not wait forever on a dead
// connection. Writes to api-conference go on, and once Redis answers again the copy converges,
// with the syncer's and api-attendee's goroutines (go_goroutines) back to what they were.
//
// The relay's errors are logged, not asserted: go-redis retries a failed pipeline by itself
// (3 retries of a 3 s read timeout, each on a new connection), so the one publish in flight
// can outlast the outage and succeed on its last try without the relay seeing an error.
func TestNetRedisBlackholed(t *testing.T) {
	t.Parallel()
	s := setup(t, push, options{netFaults: true})
	w := newWorkload(t, s.api, seed(t))
	metrics := s.syncers[0].URL() + "/metrics"
	attendeeMetrics := s.attendees[0].URL() + "/metrics"
	stop := writeDuring(w, 20)
	sleepCtx(context.Background(), 2*time.Second)
	stop()
	s.AwaitProjection(w.Created(), tombstoneRequired)
	gSyncer, gAttendee := goroutines(t, s.syncers[0]), goroutines(t, s.attendees[0])
	errs0 := metricSum(t, metrics, "relay_errors_total")
	retries0 := metricSum(t, attendeeMetrics, "attendee_consumer_retries_total")

	s.net.redis.Add("blackhole-up", "timeout", "upstream", map[string]any{"timeout": 0})
	s.net.redis.Add("blackhole-down", "timeout", "downstream", map[string]any{"timeout": 0})
	stop = writeDuring(w, 20)
	sleepCtx(context.Background(), 20*time.Second)
	stop()
	errsDuring := metricSum(t, metrics, "relay_errors_total") - errs0
	retriesDuring := metricSum(t, attendeeMetrics, "attendee_consumer_retries_total") - retries0
	s.net.redis.Remove("blackhole-up")
	s.net.redis.Remove("blackhole-down")

	requireNoWriteErrors(t, w)
	if retriesDuring == 0 {
		t.Error("attendee_consumer_retries_total did not rise while Redis was blackholed: did a read wait without a timeout?")
	}
	s.AwaitProjection(w.Created(), tombstoneRequired)
	awaitGoroutinesBack(t, s.syncers[0], gSyncer, 5)
	awaitGoroutinesBack(t, s.attendees[0], gAttendee, 5)
	t.Logf("%d writes; during the 20 s blackhole: %v relay errors, %v failed consumer rounds", w.Writes(), errsDuring, retriesDuring)
}

// TestNetRedisResetMidPipeline (push): the relay's connection to Redis is cut in the middle of
// a pipeline of XADDs: while Redis is blackholed, the outbox fills up, so that the first batch
// after it is one long pipeline, and every connection is then cut after 4 kB have gone towards
// Redis, part-way through such a pipeline: Redis applied the XADDs before the cut, the relay
// never heard their replies, and publishes the batch again. Duplicates in the stream are
// allowed (the consumer's apply is idempotent) and counted; the copy converges and nothing is
// left in the outbox.
func TestNetRedisResetMidPipeline(t *testing.T) {
	t.Parallel()
	s := setup(t, push, options{netFaults: true})
	w := newWorkload(t, s.api, seed(t))
	metrics := s.syncers[0].URL() + "/metrics"
	createMany(t, s, w, 40)
	s.AwaitProjection(w.Created(), tombstoneRequired)
	errs0 := metricSum(t, metrics, "relay_errors_total")

	s.net.redis.Add("hold", "timeout", "upstream", map[string]any{"timeout": 0})
	ctx := context.Background()
	for id := range w.Created() {
		if _, err := s.api.updateConference(ctx, id, map[string]any{"name": fmt.Sprintf("Piped %d", id)}); err != nil {
			t.Fatal(err)
		}
	}
	// limit_data cuts each connection after its first 4 kB towards Redis; a held batch of 40
	// XADDs is about 20 kB, so the cut falls inside the pipeline.
	s.net.redis.Add("cut", "limit_data", "upstream", map[string]any{"bytes": 4096})
	s.net.redis.Remove("hold")
	awaitCondition(t, 30*time.Second, "the relay to see the cut pipeline fail", func() bool {
		return metricSum(t, metrics, "relay_errors_total") > errs0
	})
	// A few more cut connections, then let it through.
	sleepCtx(ctx, 2*time.Second)
	s.net.redis.Remove("cut")
	s.AwaitProjection(w.Created(), tombstoneRequired)
	entries, dups := streamDuplicates(t, s)
	t.Logf("stream: %d events, %d of them duplicates; %v relay errors", entries, dups, metricSum(t, metrics, "relay_errors_total")-errs0)
}

// TestNetListenReset (push): every connection of the relay to Postgres, its LISTEN connection
// among them, is reset by the network when the next notification comes down it, so that the
// notification is lost with the connection. The relay must find the outbox rows anyway (its
// sweep, or the catch-up after it listens again) and drain the outbox.
func TestNetListenReset(t *testing.T) {
	t.Parallel()
	s := setup(t, push, options{netFaults: true})
	w := newWorkload(t, s.api, seed(t))
	metrics := s.syncers[0].URL() + "/metrics"
	createMany(t, s, w, 5)
	s.AwaitProjection(w.Created(), tombstoneRequired)
	reconnects0 := metricSum(t, metrics, "relay_listener_reconnects_total")

	s.net.syncerDB.Add("reset", "reset_peer", "downstream", map[string]any{"timeout": 0})
	ctx := context.Background()
	c, err := s.api.createConference(ctx, "After the reset", time.Date(2027, 9, 1, 9, 0, 0, 0, time.UTC), 2, 100, w.locations[0])
	if err != nil {
		t.Fatal(err)
	}
	w.AddCreated(c.ID)
	awaitCondition(t, 30*time.Second, "the relay's LISTEN connection to be reset", func() bool {
		return metricSum(t, metrics, "relay_listener_reconnects_total") > reconnects0
	})
	s.net.syncerDB.Remove("reset")
	stop := writeDuring(w, 20)
	sleepCtx(ctx, 2*time.Second)
	stop()
	requireNoWriteErrors(t, w)
	s.AwaitProjection(w.Created(), tombstoneRequired)
	t.Logf("listener reconnects: %v", metricSum(t, metrics, "relay_listener_reconnects_total")-reconnects0)
}

// TestNetConferenceSlowerThanThePoll (pull): every answer of api-conference takes 2 s longer
// while the syncer polls every second. Polls must not pile up: at most one is in flight, so
// over a window of W seconds the syncer sends at most W/2 + 1 requests (its own
// poller_source_requests_total counts them). Writes go on, and the copy converges.
func TestNetConferenceSlowerThanThePoll(t *testing.T) {
	t.Parallel()
	s := setup(t, pull, options{netFaults: true, pollInterval: time.Second})
	w := newWorkload(t, s.api, seed(t))
	metrics := s.syncers[0].URL() + "/metrics"
	createMany(t, s, w, 5)
	s.AwaitProjection(w.Created(), absenceAllowed)

	s.net.conference.Add("slow", "latency", "downstream", map[string]any{"latency": 2000})
	// Let the request in flight when the toxic came finish, then count over a 10 s window.
	sleepCtx(context.Background(), 3*time.Second)
	stop := writeDuring(w, 10)
	req0, start := metricSum(t, metrics, "poller_source_requests_total"), time.Now()
	sleepCtx(context.Background(), 10*time.Second)
	reqs, window := metricSum(t, metrics, "poller_source_requests_total")-req0, time.Since(start)
	stop()
	s.net.conference.Remove("slow")

	requireNoWriteErrors(t, w)
	if most := window.Seconds()/2 + 1; reqs > most {
		t.Errorf("%v requests to api-conference in %s of 2 s answers: more than one poll was in flight (at most %.1f)", reqs, window.Round(time.Millisecond), most)
	}
	s.AwaitProjection(w.Created(), absenceAllowed)
	t.Logf("%v polls in %s with 2 s answers and a 1 s interval", reqs, window.Round(time.Millisecond))
}

// TestNetResponseCutInHalf (pull): the syncer's connections to api-conference are cut after
// half as many bytes as the answer to its next poll: it reads a response cut short. Nothing of
// it may be applied in part (every VO row is at all times a version the source had), and a
// short answer must not read as deletes: no tombstone ever appears, since nothing was deleted.
func TestNetResponseCutInHalf(t *testing.T) {
	t.Parallel()
	s := setup(t, pull, options{netFaults: true})
	w := newWorkload(t, s.api, seed(t))
	metrics := s.syncers[0].URL() + "/metrics"
	ids := createMany(t, s, w, 30)
	s.AwaitProjection(w.Created(), absenceAllowed)

	// The next poll's answer is the 30 updated conferences, about as long as the state listing.
	resp, err := http.Get(s.conference.URL() + changeevent.PathState)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	half := len(body) / 2
	errs0 := metricSum(t, metrics, "poller_errors_total")
	s.syncers[0].Freeze() // no poll between the toxic and the updates
	s.net.conference.Add("cut", "limit_data", "downstream", map[string]any{"bytes": half})
	ctx := context.Background()
	names := map[int64]map[string]bool{}
	live, vos, err := snapshot(ctx, s.db)
	if err != nil {
		t.Fatal(err)
	}
	for id, c := range live {
		names[id] = map[string]bool{c.Name: true}
	}
	for _, id := range ids {
		name := fmt.Sprintf("Cut %d", id)
		if _, err := s.api.updateConference(ctx, id, map[string]any{"name": name}); err != nil {
			t.Fatal(err)
		}
		names[id][name] = true
	}
	s.syncers[0].Thaw()
	checkWhole := func() {
		_, vos, err = snapshot(ctx, s.db)
		if err != nil {
			t.Fatal(err)
		}
		for id, v := range vos {
			if v.Deleted {
				t.Fatalf("conference %d has a tombstone, but nothing was deleted", id)
			}
			if !names[id][v.Name] {
				t.Fatalf("conference %d has the VO %s, a name the source never had", id, v)
			}
		}
	}
	awaitCondition(t, 30*time.Second, "the syncer to fail a poll on a cut response", func() bool {
		checkWhole()
		return metricSum(t, metrics, "poller_errors_total") > errs0
	})
	checkWhole()
	s.net.conference.Remove("cut")
	s.AwaitProjection(w.Created(), absenceAllowed)
	checkWhole()
	t.Logf("cut at %d of about %d bytes; %v failed polls", half, len(body), metricSum(t, metrics, "poller_errors_total")-errs0)
}

// TestNetAttendeeDatabaseUnreachable: api-attendee's Postgres goes away for 30 s (the issue's
// duration): its connections are closed and new ones refused, while writes go on at the source.
// In push mode the consumer must not use up the entries' deliveries and dead-letter them; in
// pull mode the handover fails and is retried. Afterwards nothing is lost: the copy converges
// strictly (push) and the dead-letter count is 0.
func TestNetAttendeeDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{push, pull} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := setup(t, mode, options{netFaults: true})
			w := newWorkload(t, s.api, seed(t))
			createMany(t, s, w, 5)
			s.AwaitProjection(w.Created(), deletesIn(mode))

			s.net.attendeeDB.Down()
			stop := writeDuring(w, 20)
			sleepCtx(context.Background(), 30*time.Second)
			n := stop()
			s.net.attendeeDB.Up()

			requireNoWriteErrors(t, w)
			s.AwaitProjection(w.Created(), deletesIn(mode))
			attendeeMetrics := s.attendees[0].URL() + "/metrics"
			if d := metricSum(t, attendeeMetrics, "attendee_consumer_entries_dead_lettered_total"); d != 0 {
				t.Errorf("api-attendee dead-lettered %v entries because its database was away", d)
			}
			if mode == push {
				dlq := redisconn.Keys(s.stream).DeadLetter
				if n, err := s.rdb.XLen(context.Background(), dlq).Result(); err != nil {
					t.Fatal(err)
				} else if n != 0 {
					t.Errorf("the dead-letter stream %s holds %d entries", dlq, n)
				}
			}
			t.Logf("%s: %d writes, 30 s without api-attendee's database", mode, n)
		})
	}
}
