package docker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// stackRedis is a private redis-server started by docker/redis/start.sh, as the container
// starts it, with the compose stack's config and ACL users.
type stackRedis struct {
	addr     string
	password map[string]string // of each ACL user
}

// url is the REDIS_URL of user.
func (r *stackRedis) url(user string) string {
	return fmt.Sprintf("redis://%s:%s@%s/0", user, r.password[user], r.addr)
}

// client connects as user ("default" without a password); it is closed when t ends.
func (r *stackRedis) client(t *testing.T, user string) *redis.Client {
	t.Helper()
	opts := &redis.Options{Addr: r.addr, DisableIdentity: true}
	if user != "default" {
		opts.Username, opts.Password = user, r.password[user]
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// newStackRedis starts redis-server through docker/redis/start.sh on a free port, with its data
// in a directory of t's. It is stopped when t ends.
func newStackRedis(t *testing.T) *stackRedis {
	t.Helper()
	for _, tool := range []string{"redis-server", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "%s is not installed: the Redis ACL tests start their own redis-server", tool)
		}
	}
	confDir, err := filepath.Abs(filepath.Join(root, "docker/redis"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := &stackRedis{password: map[string]string{}}
	env := []string{"PATH=" + os.Getenv("PATH"), "REDIS_CONF_DIR=" + confDir, "REDIS_ACL_FILE=" + filepath.Join(dir, "users.acl")}
	for _, user := range []string{"syncer", "attendee", "inspector"} {
		r.password[user] = randomHex(12)
		env = append(env, fmt.Sprintf("REDIS_%s_PASSWORD=%s", strings.ToUpper(user), r.password[user]))
	}
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		r.addr = fmt.Sprintf("127.0.0.1:%d", port)
		log := &syncBuffer{}
		cmd := exec.Command("sh", filepath.Join(confDir, "start.sh"), "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--dir", dir)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, log, log
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		ping := r.client(t, "default")
		err := func() error {
			deadline := time.Now().Add(10 * time.Second)
			for {
				select {
				case <-done:
					return fmt.Errorf("redis-server exited: %s", log.String())
				default:
				}
				err := ping.Ping(context.Background()).Err()
				if err == nil || time.Now().After(deadline) {
					return err
				}
				<-time.After(20 * time.Millisecond) // polling against the deadline
			}
		}()
		if err == nil {
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					_ = cmd.Process.Kill()
					<-done
				}
			})
			return r
		}
		_ = cmd.Process.Kill()
		<-done
		// Someone else may have taken the port between the probe and the start.
		if attempt == 3 || !strings.Contains(err.Error(), "exited") {
			t.Fatalf("redis-server via docker/redis/start.sh: %v", err)
		}
	}
}

// wantNoPerm fails t unless err is Redis' ACL refusal.
func wantNoPerm(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
		t.Errorf("%s: got %v, want NOPERM", what, err)
	}
}

// TestRedisACL shows what each user of docker/redis/users.acl may and may not do, with the
// commands the services send (syncer/internal/relay, api-attendee/internal/redisstream).
func TestRedisACL(t *testing.T) {
	t.Parallel()
	r := newStackRedis(t)
	ctx := context.Background()
	const stream, group, dlq, epoch = "conference.changes", "attendee", "{conference.changes}.dlq", "{conference.changes}.epoch"
	syncer, attendee, inspector, anyone := r.client(t, "syncer"), r.client(t, "attendee"), r.client(t, "inspector"), r.client(t, "default")

	// The service's own work, in the order it happens.
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("attendee PING", attendee.Ping(ctx).Err())
	must("attendee XGROUP CREATE MKSTREAM", attendee.XGroupCreateMkStream(ctx, stream, group, "0").Err())
	must("syncer PING", syncer.Ping(ctx).Err())
	must("syncer SETNX epoch", syncer.SetNX(ctx, epoch, "1", 0).Err())
	must("syncer GET epoch", syncer.Get(ctx, epoch).Err())
	_, err := syncer.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: stream, MaxLen: 1000, Approx: true, Values: []string{"event_id", "e1"}})
		p.XAdd(ctx, &redis.XAddArgs{Stream: dlq, MaxLen: 1000, Approx: true, Values: []string{"dlq_reason", "test"}})
		return nil
	})
	must("syncer XADD stream and dead letters", err)
	must("syncer XINFO STREAM", syncer.XInfoStream(ctx, stream).Err())
	must("syncer XINFO GROUPS", syncer.XInfoGroups(ctx, stream).Err())
	must("syncer XPENDING", syncer.XPending(ctx, stream, group).Err())
	must("syncer WAIT", syncer.Do(ctx, "WAIT", 0, 10).Err())
	res, err := attendee.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c1", Streams: []string{stream, ">"}, Count: 10, Block: 100 * time.Millisecond}).Result()
	must("attendee XREADGROUP", err)
	if len(res) != 1 || len(res[0].Messages) != 1 {
		t.Fatalf("XREADGROUP got %v; want the one entry", res)
	}
	id := res[0].Messages[0].ID
	must("attendee XPENDING", attendee.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: group, Start: "-", End: "+", Count: 10}).Err())
	must("attendee XAUTOCLAIM", attendee.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: stream, Group: group, Consumer: "c2", MinIdle: time.Hour, Start: "0-0", Count: 10}).Err())
	_, err = attendee.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: dlq, Values: []string{"dlq_reason", "undecodable"}})
		p.XAck(ctx, stream, group, id)
		return nil
	})
	must("attendee MULTI XADD dead letter XACK EXEC", err)
	if n, err := attendee.XAck(ctx, stream, group, id).Result(); err != nil || n != 0 {
		t.Fatalf("XACK again: %d, %v; want 0 (acked in the MULTI)", n, err)
	}
	must("attendee XGROUP DELCONSUMER", attendee.XGroupDelConsumer(ctx, stream, group, "c1").Err())
	must("inspector XINFO GROUPS", inspector.XInfoGroups(ctx, stream).Err())
	must("inspector XREVRANGE", inspector.XRevRangeN(ctx, stream, "+", "-", 3).Err())
	must("inspector XREAD", inspector.XRead(ctx, &redis.XReadArgs{Streams: []string{stream, "0"}, Count: 5, Block: -1}).Err())
	must("inspector GET epoch", inspector.Get(ctx, epoch).Err())
	must("default PING (the health check)", anyone.Ping(ctx).Err())

	// What none of them may do.
	for user, c := range map[string]*redis.Client{"syncer": syncer, "attendee": attendee, "inspector": inspector, "default": anyone} {
		wantNoPerm(t, user+" FLUSHALL", c.FlushAll(ctx).Err())
		wantNoPerm(t, user+" CONFIG GET", c.ConfigGet(ctx, "requirepass").Err())
		wantNoPerm(t, user+" KEYS", c.Keys(ctx, "*").Err())
		wantNoPerm(t, user+" DEL stream", c.Del(ctx, stream).Err())
		wantNoPerm(t, user+" SET elsewhere", c.Set(ctx, "elsewhere", "1", 0).Err())
		wantNoPerm(t, user+" ACL LIST", c.Do(ctx, "ACL", "LIST").Err())
	}
	wantNoPerm(t, "syncer XREADGROUP", syncer.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "x", Streams: []string{stream, ">"}, Block: -1}).Err())
	wantNoPerm(t, "syncer XACK", syncer.XAck(ctx, stream, group, id).Err())
	wantNoPerm(t, "syncer XGROUP DESTROY", syncer.XGroupDestroy(ctx, stream, group).Err())
	wantNoPerm(t, "syncer XINFO CONSUMERS", syncer.XInfoConsumers(ctx, stream, group).Err())
	wantNoPerm(t, "attendee XADD to the stream", attendee.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"forged", "1"}}).Err())
	wantNoPerm(t, "attendee SETNX epoch", attendee.SetNX(ctx, epoch, "1", 0).Err())
	wantNoPerm(t, "attendee XGROUP DESTROY", attendee.XGroupDestroy(ctx, stream, group).Err())
	wantNoPerm(t, "attendee XTRIM", attendee.XTrimMaxLen(ctx, stream, 0).Err())
	wantNoPerm(t, "inspector XADD", inspector.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"forged", "1"}}).Err())
	wantNoPerm(t, "inspector XACK", inspector.XAck(ctx, stream, group, id).Err())
	wantNoPerm(t, "default GET", anyone.Get(ctx, epoch).Err())
	wantNoPerm(t, "default XRANGE", anyone.XRange(ctx, stream, "-", "+").Err())
}
