package e2e

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"conferencego/bench/stack"
	"conferencego/syncer/redisconn"
	"conferencego/syncer/redisconn/redistest"
)

// Modes of the syncer.
const (
	push = "push"
	pull = "pull"
)

// pollInterval is the syncer's poll interval in pull mode.
const pollInterval = 200 * time.Millisecond

// convergeWithin is the deadline of every convergence check: generous, because the machine
// may be busy with other tests; the time actually taken is logged.
const convergeWithin = 60 * time.Second

// system is the three services of one test, with its own database, redis-server (push), stream
// and group.
type system struct {
	t     *testing.T
	mode  string
	dbURL string
	db    *pgx.Conn
	redis *redisServer
	// With options.sentinel: a primary and a replica under one Sentinel, instead of redis.
	replicated *redistest.Replicated
	sentinel   *redistest.Sentinel
	redisURL   string
	redisMode  string
	rdb        redis.UniversalClient
	stream     string
	group      string
	token      string
	opts       options

	conference *proc
	proxy      *badProxy
	net        *netFaults // with options.netFaults
	attendees  []*proc
	syncers    []*proc
	api        *apiClient
}

type options struct {
	// persistRedis gives redis-server an append-only file, so that a Stop and Start keeps the
	// stream (a Redis that is down, rather than one that lost its data).
	persistRedis bool
	// streamMaxLen is the syncer's SYNC_STREAM_MAXLEN; 0 leaves its default.
	streamMaxLen int
	// reconcileInterval is the syncer's SYNC_RECONCILE_INTERVAL; 0 leaves its default.
	reconcileInterval time.Duration
	// proxy puts a proxy that can spoil the source's state listing between the syncer and
	// api-conference (see badProxy).
	proxy bool
	// pullList runs pull mode the seed's way (SYNC_PULL=list).
	pullList bool
	// sentinel runs push mode against a primary and a replica watched by a Sentinel, the
	// services in REDIS_MODE=sentinel; redis is then nil.
	sentinel bool
	// netFaults routes the services' links to Redis, Postgres and api-conference through
	// toxiproxy proxies (s.net) that tests can break (netfault_test.go).
	netFaults bool
	// adminURL is the Postgres server of the test's database (a pgCluster's); empty means
	// TEST_DATABASE_URL's.
	adminURL string
	// pollInterval is the syncer's SYNC_POLL_INTERVAL in pull mode; 0 means pollInterval.
	pollInterval time.Duration
	// logical runs push mode on the logical-decoding transport, on the binary's wal_level=logical
	// cluster unless adminURL names another (which must have it too).
	logical bool
	// conferenceEnv and syncerEnv are settings of api-conference and of every syncer, over the
	// test's own (how push wakes the relay, for one).
	conferenceEnv, syncerEnv map[string]string
}

// setup starts api-conference, one api-attendee and one syncer in mode, each test with its
// own database, redis-server (push) and names.
func setup(t *testing.T, mode string, opts options) *system {
	t.Helper()
	admin := cmp.Or(opts.adminURL, adminURL())
	if opts.logical && opts.adminURL == "" {
		admin = logicalAdminURL(t)
	}
	dbURL := newDatabaseAt(t, admin)
	if opts.logical {
		opts = withLogical(opts, "s_"+stack.RandomHex(8))
	}
	s := &system{
		t: t, mode: mode, opts: opts,
		dbURL:  dbURL,
		stream: "e2e." + stack.RandomHex(6) + ".changes",
		group:  "e2e-" + stack.RandomHex(6),
		token:  stack.RandomHex(16),
	}
	switch {
	case mode == push && opts.sentinel:
		s.replicated = redistest.StartReplicated(t)
		s.sentinel = redistest.StartSentinel(t, s.replicated.Primary, "e2e")
		s.redisURL, s.redisMode = s.sentinel.URL(), redisconn.ModeSentinel
		rdb, err := redisconn.Open(context.Background(), redisconn.Config{Mode: s.redisMode, URL: s.redisURL})
		if err != nil {
			t.Fatal(err)
		}
		s.rdb = rdb
		t.Cleanup(func() { s.rdb.Close() })
	case mode == push:
		s.redis = startRedis(t, opts.persistRedis)
		s.redisURL, s.redisMode = s.redis.URL(), redisconn.ModeStandalone
		s.rdb = redis.NewClient(&redis.Options{Addr: s.redis.Addr})
		t.Cleanup(func() { s.rdb.Close() })
	}
	s.db = connect(t, s.dbURL)
	if opts.netFaults {
		s.net = newNetFaults(t)
	}
	confEnv := map[string]string{"DATABASE_URL": s.dbURL, "LOG_LEVEL": "warn"}
	maps.Copy(confEnv, opts.conferenceEnv)
	s.conference = startProc(t, binConference, binary(t, binConference), confEnv)
	s.api = newAPIClient(s.conference.URL())
	if opts.proxy {
		s.proxy = newBadProxy(t, s.conference.URL())
	}
	s.AddAttendee()
	s.AddSyncer()
	return s
}

// AddAttendee starts one more api-attendee; in push mode it joins the group.
func (s *system) AddAttendee() *proc {
	s.t.Helper()
	env := map[string]string{
		"DATABASE_URL": s.dbURL, "SYNC_MODE": s.mode, "SYNC_TOKEN": s.token, "LOG_LEVEL": "info",
	}
	if s.mode == push {
		env["REDIS_URL"], env["REDIS_MODE"] = s.redisURL, s.redisMode
		env["SYNC_STREAM"] = s.stream
		env["SYNC_GROUP"] = s.group
		// Short, so that entries left pending by a killed consumer are taken over quickly.
		env["SYNC_CLAIM_IDLE"] = "1s"
	}
	if s.net != nil {
		s.net.route(s, binAttendee, env)
	}
	p := startProc(s.t, name(binAttendee, len(s.attendees)), binary(s.t, binAttendee), env)
	s.attendees = append(s.attendees, p)
	return p
}

// AddSyncer starts one more syncer; it hands changes to the first api-attendee.
func (s *system) AddSyncer() *proc {
	s.t.Helper()
	env := map[string]string{
		"SYNC_MODE": s.mode, "SYNC_STREAM": s.stream, "SYNC_TOKEN": s.token, "LOG_LEVEL": "info",
		"CONFERENCE_URL": s.conference.URL(), "ATTENDEE_URL": s.attendees[0].URL(),
	}
	if s.proxy != nil {
		env["CONFERENCE_URL"] = s.proxy.URL()
	}
	if s.opts.reconcileInterval > 0 {
		env["SYNC_RECONCILE_INTERVAL"] = s.opts.reconcileInterval.String()
	}
	if s.opts.pullList {
		env["SYNC_PULL"] = "list"
	}
	switch s.mode {
	case push:
		env["DATABASE_URL"] = s.dbURL
		env["REDIS_URL"], env["REDIS_MODE"] = s.redisURL, s.redisMode
		if s.opts.streamMaxLen > 0 {
			env["SYNC_STREAM_MAXLEN"] = strconv.Itoa(s.opts.streamMaxLen)
		}
	case pull:
		env["SYNC_POLL_INTERVAL"] = pollInterval.String()
		if s.opts.pollInterval > 0 {
			env["SYNC_POLL_INTERVAL"] = s.opts.pollInterval.String()
		}
	}
	maps.Copy(env, s.opts.syncerEnv)
	if s.net != nil {
		s.net.route(s, binSyncer, env)
	}
	p := startProc(s.t, name(binSyncer, len(s.syncers)), binary(s.t, binSyncer), env)
	s.syncers = append(s.syncers, p)
	return p
}

func name(bin string, i int) string {
	if i == 0 {
		return bin
	}
	return bin + "-" + strconv.Itoa(i+1)
}

// dbName is the name of the test's database.
func (s *system) dbName() string {
	return s.db.Config().Database
}

// Check reports every process that ended without the test asking.
func (s *system) Check() error {
	var errs []error
	for _, p := range append(append([]*proc{s.conference}, s.attendees...), s.syncers...) {
		if err := p.Err(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// AwaitProjection waits until the VO table is the projection of the conference table, with
// created the ids of every conference the test created.
func (s *system) AwaitProjection(created map[int64]bool, mode strictness) {
	s.t.Helper()
	awaitProjection(s.t, s.db, created, mode, convergeWithin, s.Check)
	if err := s.Check(); err != nil {
		s.t.Fatal(err)
	}
	if s.mode == push {
		s.awaitDrained()
	}
}

// awaitDrained waits until the relay has removed every outbox row it published and the group
// has no pending entries: nothing is left behind or stuck once the system converged.
func (s *system) awaitDrained() {
	s.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond) // polling against the deadline
	defer tick.Stop()
	for {
		var rows int64
		if err := s.db.QueryRow(ctx, "SELECT count(*) FROM conference.outbox").Scan(&rows); err != nil {
			s.t.Fatal(err)
		}
		pending, err := s.rdb.XPending(ctx, s.stream, s.group).Result()
		if err != nil {
			s.t.Fatal(err)
		}
		if rows == 0 && pending.Count == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("30s after convergence, %d outbox rows are left and %d stream entries pending: %+v", rows, pending.Count, pending)
		}
		<-tick.C
	}
}

// AwaitVO waits until the VO row of conference id satisfies ok (given nil when there is no
// row), and returns how long that took.
func (s *system) AwaitVO(id int64, ok func(*vo) bool) time.Duration {
	s.t.Helper()
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond) // polling one row against the deadline
	defer tick.Stop()
	for {
		v, err := s.readVO(id)
		if err != nil {
			s.t.Fatal(err)
		}
		if ok(v) {
			return time.Since(start)
		}
		if err := s.Check(); err != nil {
			s.t.Fatal(err)
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("VO of conference %d is %v after 30s", id, v)
		}
		<-tick.C
	}
}

func (s *system) readVO(id int64) (*vo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v := vo{}
	err := s.db.QueryRow(ctx, `SELECT conference_id, name, coalesce(starts, 'epoch'), coalesce(ends, 'epoch'),
		max_attendees, version, deleted FROM attendee.conference_vos WHERE conference_id = $1`, id).
		Scan(&v.ID, &v.Name, &v.Starts, &v.Ends, &v.MaxAttendees, &v.Version, &v.Deleted)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read VO %d: %w", id, err)
	}
	return &v, nil
}
