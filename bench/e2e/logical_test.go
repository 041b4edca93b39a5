package e2e

import (
	"errors"
	"maps"
	"testing"

	"conferencego/syncer/pgcluster"
)

// The logical-decoding transport (OUTBOX_TRANSPORT=logical, SYNC_OUTBOX_TRANSPORT=logical) runs
// the invariant tests on a server with wal_level=logical: one cluster for the test binary
// (pgcluster.Shared), since the shared server runs with replica, each test with a database and a
// slot of its own.
// logicalAdminURL is the admin URL of the binary's wal_level=logical cluster, made on first use.
func logicalAdminURL(t *testing.T) string {
	t.Helper()
	c, err := pgcluster.Shared(logicalSettings...)
	if errors.Is(err, pgcluster.ErrNoPostgres) {
		unavailable(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	return c.AdminURL()
}

// logicalSettings are the server settings of the logical transport: enough senders and slots for
// every test of the binary running at once.
var logicalSettings = []string{"wal_level=logical", "max_wal_senders=64", "max_replication_slots=64", "max_connections=400"}

func removeLogicalCluster() { pgcluster.RemoveShared() }

// withLogical returns opts set for the logical transport, on slot: both sides name it, and
// api-conference makes it at start (the test's role may).
func withLogical(opts options, slot string) options {
	conf := map[string]string{"OUTBOX_TRANSPORT": "logical", "OUTBOX_SLOT": slot}
	maps.Copy(conf, opts.conferenceEnv)
	syncer := map[string]string{"SYNC_OUTBOX_TRANSPORT": "logical", "SYNC_SLOT": slot}
	maps.Copy(syncer, opts.syncerEnv)
	opts.conferenceEnv, opts.syncerEnv = conf, syncer
	return opts
}

// variant is one way to sync: a mode, and in push mode a transport.
type variant struct {
	name    string
	mode    string
	logical bool
}

var (
	pushTable   = variant{"push", push, false}
	pushLogical = variant{"push-logical", push, true}
	pullFeed    = variant{"pull", pull, false}
	// allVariants are what the invariant tests run in: both transports of push, and pull.
	allVariants = []variant{pushTable, pushLogical, pullFeed}
	// pushVariants are push mode's two transports.
	pushVariants = []variant{pushTable, pushLogical}
)

// setupVariant is setup in v's mode and transport.
func setupVariant(t *testing.T, v variant, opts options) *system {
	t.Helper()
	opts.logical = v.logical
	return setup(t, v.mode, opts)
}

// settings are the server settings a test's own cluster needs for v.
func (v variant) settings() []string {
	if v.logical {
		return logicalSettings
	}
	return nil
}
