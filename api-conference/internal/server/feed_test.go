package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"conferencego/syncer/changeevent"
)

func TestFeedAndStateRoutes(t *testing.T) {
	t.Parallel()
	f := setup(t)
	loc := f.mustLocation(t)
	a := f.mustConference(t, loc.ID, "A")
	b := f.mustConference(t, loc.ID, "B")
	f.must(t, 200, "DELETE", b.Href, nil, nil)

	var feed changeevent.FeedPage
	deadline := time.Now().Add(15 * time.Second)
	for len(feed.Changes) < 2 {
		f.must(t, 200, "GET", changeevent.PathFeed, nil, &feed)
		if time.Now().After(deadline) {
			t.Fatalf("feed: %+v", feed)
		}
		time.Sleep(10 * time.Millisecond) // polling against a deadline: older transactions elsewhere hold the feed
	}
	if feed.Source == "" || feed.Next == "" || feed.More {
		t.Errorf("feed page: %+v", feed)
	}
	got := map[int64]string{}
	for _, c := range feed.Changes {
		got[c.ConferenceID] = fmt.Sprintf("v%d %s", c.Version, c.Type)
	}
	if got[a.ID] != "v1 conference.created" || got[b.ID] != "v2 conference.deleted" {
		t.Errorf("feed: %v", got)
	}
	var idle changeevent.FeedPage
	f.must(t, 200, "GET", changeevent.PathFeed+"?limit=5&after="+feed.Next, nil, &idle)
	if len(idle.Changes) != 0 || idle.Source != feed.Source {
		t.Errorf("idle poll: %+v", idle)
	}

	var state changeevent.StatePage
	f.must(t, 200, "GET", changeevent.PathState+"?limit=1", nil, &state)
	if state.Source != feed.Source || state.Cursor == "" || len(state.Conferences) != 1 || state.Next == nil {
		t.Fatalf("first state page: %+v", state)
	}
	var second changeevent.StatePage
	f.must(t, 200, "GET", *state.Next, nil, &second)
	if len(second.Conferences) != 1 || second.Conferences[0].ConferenceID != b.ID || second.Next != nil {
		t.Errorf("second state page: %+v", second)
	}
	var lookup changeevent.StatePage
	f.must(t, 200, "GET", fmt.Sprintf("/api/conferences/state?ids=%d,999999,%d,%d", b.ID, a.ID, a.ID), nil, &lookup)
	if len(lookup.Conferences) != 2 || lookup.Next != nil || lookup.Source != feed.Source {
		t.Errorf("lookup: %+v", lookup)
	}
	if len(lookup.Unknown) != 1 || lookup.Unknown[0] != 999999 {
		t.Errorf("lookup's unknown ids = %v, want [999999]", lookup.Unknown)
	}
	// The conference routes still answer around the static paths.
	f.must(t, 200, "GET", a.Href, nil, nil)
}

func TestFeedAndStateRefuseBadParameters(t *testing.T) {
	t.Parallel()
	f := setup(t)
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprint(i + 1)
	}
	for _, tc := range []struct{ path, field string }{
		{changeevent.PathFeed + "?after=abc", "after"},
		{changeevent.PathFeed + "?after=1.2.3", "after"},
		{changeevent.PathFeed + "?after=-1", "after"},
		{changeevent.PathFeed + "?after=-1.5", "after"},
		{changeevent.PathFeed + "?after=99999999999999999999999.1", "after"},
		{changeevent.PathFeed + "?after=1.99999999999999999999", "after"},
		{changeevent.PathFeed + "?after=%00.1", "after"},
		{changeevent.PathFeed + "?limit=0", "limit"},
		{changeevent.PathFeed + "?limit=1001", "limit"},
		{changeevent.PathFeed + "?limit=x", "limit"},
		{changeevent.PathFeed + "?limit=-1", "limit"},
		{changeevent.PathState + "?after=abc", "after"},
		{changeevent.PathState + "?after=-1", "after"},
		{changeevent.PathState + "?after=99999999999999999999", "after"},
		{changeevent.PathState + "?after=1.5", "after"},
		{changeevent.PathState + "?limit=0", "limit"},
		{changeevent.PathState + "?limit=1001", "limit"},
		{changeevent.PathState + "?limit=x", "limit"},
		{changeevent.PathState + "?ids=", "ids"},
		{changeevent.PathState + "?ids=,,", "ids"},
		{changeevent.PathState + "?ids=1,,2", "ids"},
		{changeevent.PathState + "?ids=a", "ids"},
		{changeevent.PathState + "?ids=0", "ids"},
		{changeevent.PathState + "?ids=-3", "ids"},
		{changeevent.PathState + "?ids=%2B3", "ids"},
		{changeevent.PathState + "?ids=99999999999999999999", "ids"},
		{changeevent.PathState + "?ids=" + strings.Join(many, ","), "ids"},
		{changeevent.PathState + "?ids=1&after=2", "ids"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			p := checkProblem(t, f.do(t, "GET", tc.path, nil), 400)
			if len(p.Errors) == 0 || p.Errors[0].Field != tc.field {
				t.Errorf("problem names %+v, want field %q", p.Errors, tc.field)
			}
		})
	}
}

func TestFeedCursorBehindTheHorizonIsGone(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if _, err := f.db.ExecContext(context.Background(), "UPDATE log_horizon SET pruned_xid = '10', pruned_at = now()"); err != nil {
		t.Fatal(err)
	}
	for _, after := range []string{"", "5.7", "10.1", "9.9223372036854775807"} {
		p := checkProblem(t, f.do(t, "GET", changeevent.PathFeed+"?after="+after, nil), 410)
		if !strings.Contains(p.Detail, changeevent.PathState) {
			t.Errorf("410 detail %q does not tell the client to list again", p.Detail)
		}
	}
	// A cursor that read the horizon's whole transaction missed nothing.
	f.must(t, 200, "GET", changeevent.PathFeed+"?after=10.9223372036854775807", nil, nil)
}
