package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/jackc/pgx/v5"

	"conferencego/syncer/pgcluster"
)

// withTransport returns api-conference's and the syncer's settings with the logical-decoding
// transport on slot added last, so that they win.
func withTransport(conference, syncer []string, slot string) ([]string, []string) {
	return append(slices.Clone(conference), "OUTBOX_TRANSPORT=logical", "OUTBOX_SLOT="+slot),
		append(slices.Clone(syncer), "SYNC_OUTBOX_TRANSPORT=logical", "SYNC_SLOT="+slot)
}

// needsLogical reports whether a mode or configuration of the run uses the logical transport.
func needsLogical(o options) bool {
	if o.commit.on {
		return slices.ContainsFunc(o.commit.configs, func(c commitConfig) bool { return c.logical })
	}
	return slices.ContainsFunc(o.modes, func(m mode) bool { return m.logical })
}

// firstPush is the first push mode of modes.
func firstPush(modes []mode) (mode, bool) {
	for _, m := range modes {
		if m.kind == "push" {
			return m, true
		}
	}
	return mode{}, false
}

// logicalServer makes sure the server of -admin-url can decode when the run needs it: if its
// wal_level is not logical, the run moves, every mode of it, to a cluster of its own with
// wal_level=logical (so that the modes it compares share one server), removed by the returned
// func.
func logicalServer(ctx context.Context, o *options, progress io.Writer) (func(), error) {
	if !needsLogical(*o) {
		return func() {}, nil
	}
	conn, err := pgx.Connect(ctx, o.adminURL)
	if err != nil {
		return nil, fmt.Errorf("-admin-url: %w", err)
	}
	var level string
	err = conn.QueryRow(ctx, "SHOW wal_level").Scan(&level)
	conn.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("-admin-url: read wal_level: %w", err)
	}
	if level == "logical" {
		return func() {}, nil
	}
	fmt.Fprintf(progress, "[compare] -admin-url runs with wal_level=%s; every mode runs on a Postgres cluster of this run's own with wal_level=logical\n", level)
	c, err := pgcluster.New(ctx, "wal_level=logical")
	if err != nil {
		return nil, fmt.Errorf("a cluster with wal_level=logical for the logical transport: %w", err)
	}
	o.adminURL = c.AdminURL()
	return c.Remove, nil
}
