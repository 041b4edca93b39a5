package server_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"conferencego/api-attendee/internal/postgres/pgtest"
	"conferencego/api-attendee/internal/server"
	"conferencego/httpedge"
)

func TestStatusReportsTheLagOfHandOvers(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	f := setupWith(t, server.Options{CORSAllowedOrigins: []string{"http://localhost:3000"}, SyncToken: testToken, Registry: reg, SyncMode: "pull"})
	f.must(t, 200, "POST", "/internal/changes", changesBody(pgtest.Created(1, 1, "GopherCon", 10)), nil, "Authorization", "Bearer "+testToken)

	var st httpedge.StatusBody
	r := f.must(t, 200, "GET", "/status", nil, &st, "Origin", "http://localhost:3000")
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "http://localhost:3000" {
		t.Errorf("Access-Control-Allow-Origin %q: the page on :3000 must be able to read it", got)
	}
	if st.Service != "api-attendee" || st.Mode != "pull" {
		t.Errorf("service %q mode %q", st.Service, st.Mode)
	}
	lag, ok := st.Metrics["attendee_internal_lag_seconds"]
	if !ok || lag.Type != "histogram" || lag.Count == nil || *lag.Count != 1 || len(lag.Buckets) == 0 {
		t.Errorf("attendee_internal_lag_seconds = %+v, want a histogram of the one change handed over", lag)
	}
	if _, ok := st.Metrics["http_requests_total"]; ok {
		t.Error("the status holds figures it was not asked for")
	}
}

func TestConferenceVOListShowsTombstonesAndLag(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.mustConference(t, 1, 2)
	f.mustConference(t, 2, 2)
	f.mustRegister(t, 1, "ada@example.com")
	if _, err := f.store.ApplyChanges(context.Background(), batchOf(pgtest.Deleted(2, 2))); err != nil {
		t.Fatal(err)
	}
	var out struct {
		ConferenceVOs []struct {
			ID         int64   `json:"id"`
			Version    int64   `json:"version"`
			Deleted    bool    `json:"deleted"`
			Attendees  int     `json:"attendees"`
			LagSeconds float64 `json:"lag_seconds"`
		} `json:"conference_vos"`
	}
	f.must(t, 200, "GET", "/api/conference-vos/", nil, &out)
	if len(out.ConferenceVOs) != 2 {
		t.Fatalf("got %d rows, want 2: %+v", len(out.ConferenceVOs), out)
	}
	if r := out.ConferenceVOs[0]; r.ID != 2 || !r.Deleted || r.Version != 2 {
		t.Errorf("first row %+v, want the tombstone of 2", r)
	}
	if r := out.ConferenceVOs[1]; r.ID != 1 || r.Deleted || r.Attendees != 1 || r.LagSeconds <= 0 {
		t.Errorf("second row %+v, want conference 1 with its attendee and a positive lag", r)
	}
	f.must(t, 200, "GET", "/api/conference-vos/?limit=1", nil, &out)
	if len(out.ConferenceVOs) != 1 || out.ConferenceVOs[0].ID != 2 {
		t.Errorf("limit=1: %+v", out.ConferenceVOs)
	}
	for _, bad := range []string{"0", "501", "x", "+1"} {
		f.must(t, 400, "GET", "/api/conference-vos/?limit="+bad, nil, nil)
	}
}
