package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestStack runs the three services, built as the Dockerfile builds them, against a database
// set up by the Postgres init and a redis-server with the ACL file, each service with its own
// role and its own Redis user, in push mode: a conference created in api-conference arrives in
// api-attendee through the outbox, the relay and the stream. The image's health check passes
// against each of them.
func TestStack(t *testing.T) {
	t.Parallel()
	db := newStackDB(t)
	rdb := newStackRedis(t)
	const token = "test-sync-token"
	// Debug logs too: a refused command that a service only logs at debug level (a best-effort
	// check) must not pass unseen.
	stream := map[string]string{"SYNC_STREAM": "conference.changes", "SYNC_GROUP": "attendee", "LOG_LEVEL": "debug"}

	conf := startService(t, "api-conference", map[string]string{"DATABASE_URL": db.url["api-conference"], "LOG_LEVEL": "debug"})
	att := startService(t, "api-attendee", merge(stream, map[string]string{
		"DATABASE_URL": db.url["api-attendee"], "REDIS_URL": rdb.url("attendee"),
		"SYNC_MODE": "push", "SYNC_TOKEN": token, "SYNC_CLAIM_IDLE": "1s",
	}))
	syncer := startService(t, "syncer", merge(stream, map[string]string{
		"DATABASE_URL": db.url["syncer"], "REDIS_URL": rdb.url("syncer"),
		"SYNC_MODE": "push", "SYNC_TOKEN": token,
		"CONFERENCE_URL": conf.url, "ATTENDEE_URL": att.url,
	}))

	c := createConference(t, conf, "StackCon")
	waitFor(t, 30*time.Second, "the conference arrives in api-attendee", func() error {
		_, err := att.do("GET", fmt.Sprintf("/api/conferences/%d/", c.ID), nil, 200)
		return err
	})
	// An update travels the same way; registration works on the copy.
	conf.mustDo(t, "PUT", fmt.Sprintf("/api/conferences/%d/", c.ID), map[string]any{"name": "StackCon 2027"}, 200, nil)
	waitFor(t, 30*time.Second, "the update arrives in api-attendee", func() error {
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

	// The relay, as the syncer role, emptied the outbox; the syncer user set the epoch marker.
	admin := connectURL(t, onDatabase(t, adminURL(), db.name))
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
	if n, err := rdb.client(t, "inspector").Exists(context.Background(), "conference.changes.epoch").Result(); err != nil || n != 1 {
		t.Errorf("epoch marker: exists %d, %v", n, err)
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

func merge(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
