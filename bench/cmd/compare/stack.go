package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"conferencego/bench/stack"
)

// services is one mode's three processes on a fresh database and fresh stream names.
type services struct {
	db               *stack.Database
	pool             *pgxpool.Pool
	conference       *stack.Process
	attendee, syncer *stack.Process
	stream           string
	slot             string // the logical transport's replication slot
	cleanup          []func()

	binDir, logDir, mode string
	common, syncerEnv    []string
}

// startStack creates the database, starts the three binaries of binDir in mode (push, or pull
// with the given interval) and waits until each answers /healthz.
func startStack(ctx context.Context, o options, m mode, logDir string) (*services, error) {
	s := &services{stream: "compare." + stack.RandomHex(4) + ".changes", slot: "compare_" + stack.RandomHex(4)}
	db, err := stack.CreateDatabase(ctx, o.adminURL, "compare_")
	if err != nil {
		return nil, fmt.Errorf("-admin-url: %w", err)
	}
	s.db = db
	s.cleanup = append(s.cleanup, func() { _ = db.Drop() })
	if s.pool, err = pgxpool.New(ctx, db.URL); err != nil {
		s.stop()
		return nil, err
	}

	s.binDir, s.logDir, s.mode = o.binDir, logDir, m.name()
	s.common = []string{"DATABASE_URL=" + db.URL, "REDIS_URL=" + o.redisURL, "SYNC_STREAM=" + s.stream,
		"SYNC_GROUP=attendee", "SYNC_TOKEN=" + stack.RandomHex(16), "LOG_FORMAT=json", "LOG_LEVEL=info"}
	conferenceEnv, syncerEnv := o.conferenceEnv, o.syncerEnv
	if m.logical {
		conferenceEnv, syncerEnv = withTransport(conferenceEnv, syncerEnv, s.slot)
	}
	if s.conference, err = s.launch(ctx, stack.Conference, conferenceEnv...); err != nil {
		s.stop()
		return nil, err
	}
	if s.attendee, err = s.launch(ctx, stack.Attendee, "SYNC_MODE="+m.kind); err != nil {
		s.stop()
		return nil, err
	}
	if err := instrument(ctx, s.pool); err != nil {
		s.stop()
		return nil, err
	}
	s.syncerEnv = s.syncerEnvFor(m, syncerEnv)
	if s.syncer, err = s.launch(ctx, stack.Syncer, s.syncerEnv...); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// syncerEnvFor is the syncer's environment in mode m, with extra (-syncer-env) last, so that
// it wins.
func (s *services) syncerEnvFor(m mode, extra []string) []string {
	env := []string{"SYNC_MODE=" + m.kind, "CONFERENCE_URL=" + s.conference.URL(), "ATTENDEE_URL=" + s.attendee.URL()}
	if m.kind == "pull" {
		env = append(env, "SYNC_POLL_INTERVAL="+m.interval.String())
		if m.list {
			env = append(env, "SYNC_PULL=list")
		}
	}
	return append(env, extra...)
}

// reconfigure restarts api-conference with conferenceEnv and, if sync, a push syncer with
// syncerEnv; without sync the syncer stays stopped.
func (s *services) reconfigure(ctx context.Context, conferenceEnv, syncerEnv []string, sync bool) error {
	s.syncer.Stop(15 * time.Second)
	s.conference.Stop(15 * time.Second)
	var err error
	if s.conference, err = s.launch(ctx, stack.Conference, conferenceEnv...); err != nil {
		return err
	}
	if !sync {
		return nil
	}
	s.syncerEnv = s.syncerEnvFor(mode{kind: "push"}, syncerEnv)
	s.syncer, err = s.launch(ctx, stack.Syncer, s.syncerEnv...)
	return err
}

// launch starts binary name on a free port with the stack's settings and env, logging to a
// file (appended to, so a restarted process keeps its earlier log), and waits until it answers.
func (s *services) launch(ctx context.Context, name string, env ...string) (*stack.Process, error) {
	addr, err := stack.FreeAddr()
	if err != nil {
		return nil, err
	}
	p, err := stack.Start(ctx, stack.Spec{
		Name: name, Bin: filepath.Join(s.binDir, name), Addr: addr,
		Env: append(append(os.Environ(), s.common...), env...),
		Log: filepath.Join(s.logDir, s.mode+"-"+name+".log"),
	})
	if err != nil {
		return nil, fmt.Errorf("%w (see its log)", err)
	}
	s.cleanup = append(s.cleanup, func() { p.Stop(15 * time.Second) })
	return p, nil
}

// stop ends the processes and drops the database, in reverse order of creation.
func (s *services) stop() {
	if s.pool != nil {
		s.pool.Close()
	}
	for i := len(s.cleanup) - 1; i >= 0; i-- {
		s.cleanup[i]()
	}
}

// instrument records, without touching the services, every change of a conference row at the
// source (with the version its event carries: a delete's is the next one) and every change
// applied to the ConferenceVO table, with their times from the one Postgres clock both services
// share. The source's trigger is on the conference table, not on the outbox, so that it sees
// every change whatever the transport (the logical one writes no outbox row). The triggers cost
// each side one insert per change, equally in every mode.
func instrument(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `
CREATE SCHEMA compare;
CREATE TABLE compare.source (conference_id bigint, version bigint, type text, occurred_at timestamptz);
CREATE TABLE compare.applied (conference_id bigint, version bigint, deleted boolean, applied_at timestamptz);
CREATE INDEX ON compare.applied (conference_id, applied_at);
CREATE FUNCTION compare.log_source() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO compare.source VALUES (OLD.id, OLD.version + 1, 'conference.deleted', clock_timestamp());
  ELSE
    INSERT INTO compare.source VALUES (NEW.id, NEW.version,
      CASE TG_OP WHEN 'INSERT' THEN 'conference.created' ELSE 'conference.updated' END, clock_timestamp());
  END IF;
  RETURN NULL;
END $$;
CREATE FUNCTION compare.log_applied() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO compare.applied VALUES (NEW.conference_id, NEW.version, NEW.deleted, NEW.applied_at);
  RETURN NULL;
END $$;
CREATE TRIGGER compare_source AFTER INSERT OR UPDATE OR DELETE ON conference.conferences FOR EACH ROW EXECUTE FUNCTION compare.log_source();
CREATE TRIGGER compare_applied AFTER INSERT OR UPDATE ON attendee.conference_vos FOR EACH ROW EXECUTE FUNCTION compare.log_applied();`)
	if err != nil {
		return fmt.Errorf("instrument the database: %w", err)
	}
	return nil
}

// resetMeasurements forgets what the seeding recorded.
func resetMeasurements(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, "TRUNCATE compare.source, compare.applied")
	return err
}

// mismatches counts conferences whose copy differs from the source: live ones missing or at
// another version, and copies still live of conferences the source no longer has.
func mismatches(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var n int
	err := pool.QueryRow(ctx, `SELECT count(*) FROM conference.conferences c
		FULL JOIN (SELECT conference_id, version FROM attendee.conference_vos WHERE NOT deleted) v ON v.conference_id = c.id
		WHERE c.id IS NULL OR v.conference_id IS NULL OR c.version <> v.version`).Scan(&n)
	return n, err
}

// awaitConverged polls until the copy equals the source or timeout passes.
func awaitConverged(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		n, err := mismatches(ctx, pool)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("%d conferences still differ after %s", n, timeout)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
