package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of three primaries without replicas: enough to spread slots over
// nodes, so that a key sent to the wrong one is refused with MOVED.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts three cluster nodes, joins them with redis-cli --cluster create, and
// returns once every node reports cluster_state:ok.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		Unavailable(tb, "redis-cli is not installed (apt-get install redis-tools): "+err.Error())
	}
	c := &Cluster{}
	for range 3 {
		c.Nodes = append(c.Nodes, StartServer(tb, func(o *serverOptions) {
			o.extra = func(tb testing.TB) []string {
				// The bus port defaults to port+10000, which may be taken or past 65535.
				_, bus, _ := net.SplitHostPort(freeAddr(tb))
				return []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
					"--cluster-node-timeout", "2000", "--cluster-port", bus}
			}
		}))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, tail(out))
	}
	for _, n := range c.Nodes {
		rdb := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1})
		err := poll(15*time.Second, nil, func(ctx context.Context) error {
			text, err := rdb.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(text, "cluster_state:ok") || !strings.Contains(text, "cluster_known_nodes:3") {
				return fmt.Errorf("CLUSTER INFO: %s", strings.Join(strings.Fields(text), " "))
			}
			return nil
		})
		rdb.Close()
		if err != nil {
			tb.Fatalf("cluster node %s: %v", n.Addr, err)
		}
	}
	return c
}

// Addrs are the nodes' addresses, the seeds of a cluster client.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// URL is the REDIS_URL of cluster mode: the first node, and the others as addr= seeds.
func (c *Cluster) URL() string {
	addrs := c.Addrs()
	u := "redis://" + addrs[0]
	for i, a := range addrs[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + a
	}
	return u
}
