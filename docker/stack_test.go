package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestStack runs the stack of compose.yaml without Docker, in each mode: the three services,
// built as the Dockerfile builds them, with the environment compose gives them (read from
// compose.yaml and .env.example; only addresses and credentials are replaced by this test's),
// against a database set up by the Postgres init and a redis-server with the ACL file, each
// service as its own role and its own Redis user. A conference created in api-conference
// arrives in api-attendee, an update follows, and registration works on the copy; the image's
// health check passes against each service.
func TestStack(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"push", "pull", "push-logical"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testStack(t, mode)
		})
	}
}

// testStack runs the stack as compose configures it, in mode: push, pull, or push on the
// logical transport (OUTBOX_TRANSPORT=logical, as .env would set it), whose Postgres is a
// cluster of the test's own with wal_level=logical, as compose starts it.
func testStack(t *testing.T, mode string) {
	admin, initEnv := adminURL(), map[string]string(nil)
	vars := map[string]string{"SYNC_MODE": mode}
	if mode == "push-logical" {
		mode = "push"
		vars = map[string]string{"SYNC_MODE": mode, "OUTBOX_TRANSPORT": "logical"}
		admin = logicalCluster(t)
	}
	project := loadCompose(t, vars)
	if mode == "push" && vars["OUTBOX_TRANSPORT"] == "logical" {
		initEnv = map[string]string{}
		for _, k := range []string{"OUTBOX_TRANSPORT", "OUTBOX_SLOT"} {
			initEnv[k] = *project.Services["postgres"].Environment[k]
		}
	}
	db := newStackDBAt(t, admin, initEnv)
	rdb := newStackRedis(t)

	// env is compose's environment of svc with the addresses and credentials of this test.
	env := func(svc string, urls map[string]string) map[string]string {
		t.Helper()
		out := map[string]string{}
		for k, v := range project.Services[svc].Environment {
			switch k {
			case "HTTP_ADDR":
				continue // startService picks a free port
			case "DATABASE_URL":
				out[k] = db.url[svc]
			case "REDIS_URL":
				u, err := url.Parse(*v)
				if err != nil {
					t.Fatalf("%s REDIS_URL: %v", svc, err)
				}
				out[k] = rdb.url(u.User.Username())
			case "CONFERENCE_URL", "ATTENDEE_URL":
				out[k] = urls[k]
			case "LOG_LEVEL":
				// Debug too: a refused command that a service logs only at debug level (a
				// best-effort check) must not pass unseen.
				out[k] = "debug"
			default:
				out[k] = *v
			}
		}
		return out
	}
	conf := startService(t, "api-conference", env("api-conference", nil))
	att := startService(t, "api-attendee", env("api-attendee", nil))
	att.token = *project.Services["api-attendee"].Environment["SYNC_TOKEN"]
	syncer := startService(t, "syncer", env("syncer", map[string]string{"CONFERENCE_URL": conf.url, "ATTENDEE_URL": att.url}))

	// Pull mode sees a change within SYNC_POLL_INTERVAL; push mode at once.
	const within = 30 * time.Second
	c := createConference(t, conf, "StackCon")
	waitFor(t, within, "the conference arrives in api-attendee", func() error {
		_, err := att.do("GET", fmt.Sprintf("/api/conferences/%d/", c.ID), nil, 200)
		return err
	})
	conf.mustDo(t, "PUT", fmt.Sprintf("/api/conferences/%d/", c.ID), map[string]any{"name": "StackCon 2027"}, 200, nil)
	waitFor(t, within, "the update arrives in api-attendee", func() error {
		var got struct {
			Name    string `json:"name"`
			Version int64  `json:"version"`
		}
		b, err := att.do("GET", fmt.Sprintf("/api/conferences/%d/", c.ID), nil, 200)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &got); err != nil {
			return err
		}
		if got.Name != "StackCon 2027" || got.Version != 2 {
			return fmt.Errorf("copy is %+v", got)
		}
		return nil
	})
	att.mustDo(t, "POST", fmt.Sprintf("/api/conferences/%d/attendees/", c.ID),
		map[string]any{"email": "grace@example.com", "name": "Grace Hopper"}, 201, nil)

	if mode == "push" {
		// The relay, as the syncer role, emptied the outbox; the syncer user set the epoch.
		admin := connectURL(t, onDatabase(t, admin, db.name))
		waitFor(t, 10*time.Second, "the outbox is empty", func() error {
			var n int
			if err := admin.QueryRow(context.Background(), "SELECT count(*) FROM conference.outbox").Scan(&n); err != nil {
				return err
			}
			if n != 0 {
				return fmt.Errorf("%d rows left", n)
			}
			return nil
		})
		if n, err := rdb.client(t, "inspector").Exists(context.Background(), "{conference.changes}.epoch").Result(); err != nil || n != 1 {
			t.Errorf("epoch marker: exists %d, %v", n, err)
		}
	}

	// The compose health check: the image's healthcheck binary against /readyz.
	hc := binary(t, "docker/healthcheck")
	for _, p := range []*proc{conf, att, syncer} {
		if out, err := exec.Command(hc, p.url+"/readyz").CombinedOutput(); err != nil {
			t.Errorf("healthcheck %s/readyz (%s): %v\n%s", p.url, p.name, err, out)
		}
		// A refused command or statement would surface here, even where a retry hid it.
		for _, bad := range []string{`"level":"ERROR"`, "NOPERM", "permission denied"} {
			if strings.Contains(p.log.String(), bad) {
				t.Errorf("%s logged %s", p.name, bad)
			}
		}
	}
}
