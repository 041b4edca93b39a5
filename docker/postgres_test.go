package docker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// stackDB is a database set up by docker/postgres the way the Postgres container sets up its
// own, with roles named uniquely for the test (roles belong to the whole server).
type stackDB struct {
	name string
	// url of the database for each service's role: "api-conference", "api-attendee", "syncer".
	url map[string]string
	// role of each service.
	role map[string]string
}

// newStackDB creates a database and runs the Postgres init of the compose stack in it, as the
// image runs it: the shell script with the passwords in its environment, executing the psql file.
// The database and the roles are dropped when t ends.
func newStackDB(t *testing.T) *stackDB {
	t.Helper()
	return newStackDBAt(t, adminURL(), nil)
}

// newStackDBAt is newStackDB on the server of admin, with env over the init script's.
func newStackDBAt(t *testing.T, adminDSN string, env map[string]string) *stackDB {
	t.Helper()
	if _, err := exec.LookPath("psql"); err != nil {
		unavailable(t, "psql is not installed: the Postgres init runs through it, as in the image")
	}
	admin := connectAdminAt(t, adminDSN)
	defer admin.Close(context.Background())
	cfg, err := pgx.ParseConfig(adminDSN)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	suffix := randomHex(6)
	s := &stackDB{
		name: "dk_" + suffix,
		role: map[string]string{"api-conference": "conference_" + suffix, "api-attendee": "attendee_" + suffix, "syncer": "syncer_" + suffix},
		url:  map[string]string{},
	}
	ctx := context.Background()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+s.name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		admin := connectAdminAt(t, adminDSN)
		defer admin.Close(context.Background())
		// A replication slot keeps its database from being dropped (the logical transport's).
		if _, err := admin.Exec(context.Background(), "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1", s.name); err != nil {
			t.Errorf("drop the replication slots of %s: %v", s.name, err)
		}
		if _, err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+s.name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", s.name, err)
		}
		for _, role := range s.role {
			if _, err := admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+role); err != nil {
				t.Errorf("drop role %s: %v", role, err)
			}
		}
	})

	passwords := map[string]string{}
	for svc := range s.role {
		passwords[svc] = randomHex(12)
	}
	script, err := filepath.Abs(filepath.Join(root, "docker/postgres/10-conferencego.sh"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", script)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"PGHOST=" + cfg.Host, "PGPORT=" + strconv.Itoa(int(cfg.Port)), "PGPASSWORD=" + cfg.Password,
		"POSTGRES_USER=" + cfg.User, "POSTGRES_DB=" + s.name,
		"CONFERENCE_DB_USER=" + s.role["api-conference"], "CONFERENCE_DB_PASSWORD=" + passwords["api-conference"],
		"ATTENDEE_DB_USER=" + s.role["api-attendee"], "ATTENDEE_DB_PASSWORD=" + passwords["api-attendee"],
		"SYNCER_DB_USER=" + s.role["syncer"], "SYNCER_DB_PASSWORD=" + passwords["syncer"],
		"CONFERENCEGO_INIT_SQL=" + filepath.Join(filepath.Dir(script), "conferencego.psql"),
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker/postgres/10-conferencego.sh: %v\n%s", err, out)
	}
	for svc, role := range s.role {
		s.url[svc] = withUser(t, adminDSN, role, passwords[svc], s.name)
	}
	return s
}

// wantDenied fails t unless err is Postgres' insufficient_privilege (42501).
func wantDenied(t *testing.T, what string, err error) {
	t.Helper()
	if code := pgCode(err); code != "42501" {
		t.Errorf("%s: got %v (SQLSTATE %q), want permission denied (42501)", what, err, code)
	}
}

// TestPostgresRoles runs the Postgres init of the compose stack, then each service's migrations
// and core paths as that service's role, and shows what each role may not do.
func TestPostgresRoles(t *testing.T) {
	t.Parallel()
	s := newStackDB(t)
	ctx := context.Background()

	// api-conference migrates its schema and writes through its API as its role.
	conf := startService(t, "api-conference", map[string]string{"DATABASE_URL": s.url["api-conference"]})
	c := createConference(t, conf, "RolesCon")
	var got struct {
		Conference conferenceDetail `json:"conference"`
	}
	conf.mustDo(t, "GET", fmt.Sprintf("/api/conferences/%d/", c.ID), nil, 200, &got)
	if got.Conference.Name != "RolesCon" {
		t.Fatalf("read back %+v", got.Conference)
	}

	// api-attendee migrates its schema, applies a change as the syncer would hand it over in
	// pull mode, and registers an attendee, as its role.
	const token = "test-sync-token"
	att := startService(t, "api-attendee", map[string]string{
		"DATABASE_URL": s.url["api-attendee"], "SYNC_MODE": "pull", "SYNC_TOKEN": token,
	})
	att.token = token
	att.mustDo(t, "POST", "/internal/changes", map[string]any{"source": "roles-test", "changes": []any{c.change()}}, 200, nil)
	att.mustDo(t, "POST", fmt.Sprintf("/api/conferences/%d/attendees/", c.ID),
		map[string]any{"email": "ada@example.com", "name": "Ada Lovelace"}, 201, nil)

	t.Run("attendee", func(t *testing.T) {
		t.Parallel()
		db := connectURL(t, s.url["api-attendee"])
		_, err := db.Exec(ctx, "SELECT count(*) FROM conference.conferences")
		wantDenied(t, "read conference.conferences", err)
		_, err = db.Exec(ctx, "SELECT count(*) FROM conference.outbox")
		wantDenied(t, "read conference.outbox", err)
		_, err = db.Exec(ctx, "CREATE SCHEMA elsewhere")
		wantDenied(t, "create a schema", err)
		_, err = db.Exec(ctx, "CREATE TABLE public.elsewhere (id int)")
		wantDenied(t, "create a table in public", err)
	})
	t.Run("conference", func(t *testing.T) {
		t.Parallel()
		db := connectURL(t, s.url["api-conference"])
		_, err := db.Exec(ctx, "SELECT count(*) FROM attendee.conference_vos")
		wantDenied(t, "read attendee.conference_vos", err)
		_, err = db.Exec(ctx, "CREATE SCHEMA elsewhere")
		wantDenied(t, "create a schema", err)
		// pgcrypto is trusted: CREATE on the database would let its holder install it.
		var available bool
		if err := db.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pgcrypto')").Scan(&available); err != nil {
			t.Fatal(err)
		}
		if available {
			_, err = db.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pgcrypto SCHEMA conference")
			wantDenied(t, "create an extension", err)
		}
	})
	t.Run("syncer", func(t *testing.T) {
		t.Parallel()
		// The relay's own statements (syncer/internal/relay), with its search_path.
		cfg, err := pgx.ParseConfig(s.url["syncer"])
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["search_path"] = "conference"
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		db, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close(context.Background())
		if _, err := db.Exec(ctx, "LISTEN conference_outbox"); err != nil {
			t.Errorf("LISTEN: %v", err)
		}
		// The relay claims through claim_outbox, the only thing it may do with the outbox.
		tx, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
			t.Fatalf("relax commit: %v", err)
		}
		// The statement of changeevent.ClaimOutboxSQL.
		rows, err := tx.Query(ctx, `SELECT id, event_id, conference_id, type, version, payload, occurred_at FROM claim_outbox($1)`, 500)
		if err != nil {
			t.Fatalf("claim outbox rows: %v", err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil || n == 0 {
			t.Fatalf("claimed %d rows: %v; want the conference's created event", n, err)
		}
		// It records and reads the newest entry it published (migration 0007).
		if _, err := tx.Exec(ctx, `SELECT record_published($1, $2, $3)`, "conference.changes", 1700000000000, 0); err != nil {
			t.Fatalf("record the published position: %v", err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		var ms, seq int64
		if err := db.QueryRow(ctx, `SELECT ms, seq FROM published_position($1)`, "conference.changes").Scan(&ms, &seq); err != nil || ms != 1700000000000 {
			t.Errorf("read the published position: %d-%d, %v", ms, seq, err)
		}
		// It counts what waits in the outbox, for /status (migration 0008), and nothing more.
		var backlog int64
		if err := db.QueryRow(ctx, `SELECT outbox_backlog($1)`, 100000).Scan(&backlog); err != nil || backlog != 0 {
			t.Errorf("count the outbox backlog: %d, %v; want 0 after the claim", backlog, err)
		}

		for _, q := range []string{
			"SELECT * FROM conference.relay_position",
			"UPDATE conference.relay_position SET ms = 0",
			"UPDATE conference.conferences SET name = 'hijacked'",
			"SELECT count(*) FROM conference.conferences",
			"DELETE FROM conference.presentations",
			"INSERT INTO conference.outbox (conference_id, type, version) VALUES (1, 'conference.deleted', 9)",
			"UPDATE conference.outbox SET version = 1",
			// An identity column cannot be set to a value, but DEFAULT renumbers the row.
			"UPDATE conference.outbox SET id = DEFAULT",
			"DELETE FROM conference.outbox",
			"SELECT count(*) FROM conference.outbox",
			"SELECT id FROM conference.outbox FOR UPDATE SKIP LOCKED",
			"SELECT count(*) FROM attendee.conference_vos",
			"CREATE SCHEMA elsewhere",
			"CREATE TABLE conference.elsewhere (id int)",
		} {
			_, err := db.Exec(ctx, q)
			wantDenied(t, q, err)
		}
	})
}

// conferenceDetail is what api-conference answers about a conference.
type conferenceDetail struct {
	ID           int64     `json:"id"`
	Href         string    `json:"href"`
	Name         string    `json:"name"`
	Starts       time.Time `json:"starts"`
	Ends         time.Time `json:"ends"`
	MaxAttendees int       `json:"max_attendees"`
	Version      int64     `json:"version"`
	Updated      time.Time `json:"updated"`
	Location     struct {
		Name  string `json:"name"`
		City  string `json:"city"`
		State string `json:"state"`
	} `json:"location"`
}

// change is the change event of the conference as it is now, as pull mode hands it over.
func (c conferenceDetail) change() map[string]any {
	return map[string]any{
		"event_id": fmt.Sprintf("pull-%d-%d", c.ID, c.Version), "type": "conference.created",
		"conference_id": c.ID, "version": c.Version, "occurred_at": c.Updated,
		"data": map[string]any{
			"id": c.ID, "href": c.Href, "name": c.Name, "starts": c.Starts, "ends": c.Ends,
			"max_attendees": c.MaxAttendees,
			"location":      map[string]any{"name": c.Location.Name, "city": c.Location.City, "state": c.Location.State},
		},
	}
}

// createConference creates a location and a conference there through api-conference's API.
func createConference(t *testing.T, conf *proc, name string) conferenceDetail {
	t.Helper()
	var loc struct {
		ID int64 `json:"id"`
	}
	conf.mustDo(t, "POST", "/api/locations/", map[string]any{
		"name": "Convention Center", "city": "Austin", "room_count": 12, "state": "TX",
	}, 201, &loc)
	var c conferenceDetail
	conf.mustDo(t, "POST", "/api/conferences/", map[string]any{
		"name": name, "starts": "2027-03-01", "ends": "2027-03-03", "description": "",
		"max_presentations": 10, "max_attendees": 500, "location": loc.ID,
	}, 201, &c)
	return c
}
