package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestPullConferenceDown (pull): api-conference stops for ten seconds between two bursts; the
// poller survives, backs off and catches up.
func TestPullConferenceDown(t *testing.T) {
	t.Parallel()
	s := setup(t, pull, options{})
	w := newWorkload(t, s.api, seed(t))
	ctx := context.Background()
	w.Run(ctx, 150, 4, 50)
	metrics := s.syncers[0].URL() + "/metrics"
	s.conference.Stop()
	before := metricSum(t, metrics, "poller_errors_total")
	const outage = 10 * time.Second
	sleepCtx(ctx, outage) // the outage itself
	failed := metricSum(t, metrics, "poller_errors_total") - before
	if err := s.Check(); err != nil {
		t.Fatalf("while api-conference was down: %v", err)
	}
	s.conference.Start()
	// Without back-off the poller would fail once per interval. A slow machine only makes
	// fewer attempts, so this bound cannot fail for want of speed.
	steady := float64(outage / pollInterval)
	t.Logf("%v failed polls while api-conference was down for %s (%v at the poll interval)", failed, outage, steady)
	if failed == 0 {
		t.Error("the poller never noticed that api-conference was down")
	}
	if failed > steady/2 {
		t.Errorf("%v failed polls in %s: the poller does not back off", failed, outage)
	}
	w.Run(ctx, 150, 4, 50)
	requireNoWriteErrors(t, w)
	s.AwaitProjection(w.Created(), absenceAllowed)
}

// TestPullManyPages (pull): more conferences than one page of the list holds (the poller asks
// for pages of up to 1000). Creates, updates and deletes on the first and the last page all
// arrive: the reconcile at start lists every page, and the feed brings the deletes.
func TestPullManyPages(t *testing.T) {
	t.Parallel()
	s := setup(t, pull, options{})
	w := newWorkload(t, s.api, seed(t))
	ctx := context.Background()
	const n = 1100
	ids := createMany(t, s, w, n)
	s.AwaitProjection(w.Created(), tombstoneRequired)

	slices.Sort(ids)
	for _, id := range []int64{ids[0], ids[500], ids[n-1]} {
		if err := s.api.deleteConference(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []int64{ids[1], ids[999], ids[1000], ids[n-2]} {
		if _, err := s.api.updateConference(ctx, id, map[string]any{"name": fmt.Sprintf("Paged %d, renamed", id)}); err != nil {
			t.Fatal(err)
		}
	}
	s.AwaitProjection(w.Created(), tombstoneRequired)
}
