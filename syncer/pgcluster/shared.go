package pgcluster

import (
	"context"
	"strings"
	"sync"
)

// shared holds the clusters Shared made, by their settings.
var shared struct {
	sync.Mutex
	clusters map[string]*sharedCluster
}

type sharedCluster struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Shared returns the process's one cluster with these settings, made on the first call: for the
// tests of a package that need a server configured their own way (wal_level=logical), each test
// with a database of its own on it, since making a cluster takes seconds. The first call's error
// is every call's. A test binary removes them with RemoveShared from its TestMain.
func Shared(settings ...string) (*Cluster, error) {
	key := strings.Join(settings, "\x00")
	shared.Lock()
	if shared.clusters == nil {
		shared.clusters = map[string]*sharedCluster{}
	}
	s, ok := shared.clusters[key]
	if !ok {
		s = &sharedCluster{}
		shared.clusters[key] = s
	}
	shared.Unlock()
	s.once.Do(func() { s.c, s.err = New(context.Background(), settings...) })
	return s.c, s.err
}

// RemoveShared stops and deletes every cluster Shared made.
func RemoveShared() {
	shared.Lock()
	defer shared.Unlock()
	for _, s := range shared.clusters {
		if s.c != nil {
			s.c.Remove()
		}
	}
	shared.clusters = nil
}
