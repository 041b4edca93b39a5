package redisstream

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/api-attendee/internal/postgres/pgtest"
	"conferencego/syncer/changeevent"
)

// valuesOf are the values of a stream entry of e, as go-redis returns them.
func valuesOf(t *testing.T, e changeevent.Event) map[string]any {
	t.Helper()
	fields, err := e.Fields()
	if err != nil {
		t.Fatalf("fields of %+v: %v", e, err)
	}
	values := map[string]any{}
	for i := 0; i < len(fields); i += 2 {
		values[fields[i]] = fields[i+1]
	}
	return values
}

// triage decides from the entries alone: no Redis, no database.
func TestTriage(t *testing.T) {
	t.Parallel()
	good, again := pgtest.Created(1, 1, "A", 10), pgtest.Created(2, 1, "B", 10)
	msgs := []redis.XMessage{
		{ID: "1-0", Values: valuesOf(t, good)},
		{ID: "2-0", Values: map[string]any{"hello": "world"}},
		{ID: "3-0", Values: valuesOf(t, pgtest.Created(3, 1, "nul \x00 inside", 10))},
		{ID: "4-0", Values: valuesOf(t, pgtest.Created(4, 1, "Tried too often", 10))},
		{ID: "5-0", Values: valuesOf(t, again)},
	}
	deliveries := map[string]int64{"4-0": 4, "5-0": 3} // new entries have no count
	apply, dead := triage(msgs, deliveries, 3)

	var applied []changeevent.Event
	for _, e := range apply {
		applied = append(applied, e.change.Event())
	}
	if diff := cmp.Diff([]changeevent.Event{good, again}, applied); diff != "" {
		t.Errorf("changes to apply (-want +got):\n%s", diff)
	}
	if apply[1].msg.ID != "5-0" || apply[1].deliveries != 3 {
		t.Errorf("the second change to apply came from %s, delivered %d times; want 5-0, 3", apply[1].msg.ID, apply[1].deliveries)
	}
	reasons := map[string]string{}
	for _, d := range dead {
		reasons[d.msg.ID] = d.reason
	}
	for id, want := range map[string]string{
		"2-0": "field event_id is missing",
		"3-0": "contains NUL",
		"4-0": "not applied after 3 deliveries",
	} {
		if !strings.Contains(reasons[id], want) {
			t.Errorf("dead letter %s: reason %q, want it to mention %q", id, reasons[id], want)
		}
	}
	if len(dead) != 3 {
		t.Errorf("%d dead letters, want 3: %+v", len(dead), reasons)
	}
}

func TestSettle(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err  error
		want outcome
	}{
		{nil, ack},
		{fmt.Errorf("apply: %w", attendee.ErrInvalid), bury},
		{fmt.Errorf("apply: %w", attendee.ErrUnavailable), leave},
		{errors.New("context deadline exceeded"), leave},
	} {
		if got := settle(tt.err); got != tt.want {
			t.Errorf("settle(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// The counters are registered under the names the README and the dashboards use.
func TestMetricsRegisterUnderTheirNames(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	mustConsumer(t, nil, nil, Config{Stream: "s", Group: "g", Registerer: reg})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		if l := f.GetMetric()[0].GetLabel(); len(l) != 2 || l[0].GetValue() != "g" || l[1].GetValue() != "s" {
			t.Errorf("%s: labels %v, want group g and stream s", f.GetName(), l)
		}
		names = append(names, f.GetName())
	}
	want := []string{
		"attendee_consumer_entries_applied_total", "attendee_consumer_entries_dead_lettered_total",
		"attendee_consumer_entries_read_total", "attendee_consumer_entries_reclaimed_total",
		"attendee_consumer_groups_created_total", "attendee_consumer_lag_seconds", "attendee_consumer_retries_total",
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("metric names (-want +got):\n%s", diff)
	}
	if _, err := New(nil, nil, Config{Stream: "s", Group: "g", Registerer: reg}); err == nil {
		t.Error("a second consumer of the same stream and group registered its metrics again")
	}
}
