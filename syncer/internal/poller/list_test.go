package poller

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"conferencego/syncer/changeevent"
)

// diffList decides from the list alone: no HTTP, no copy.
func TestDiffListHandsOverWhatIsNewAndAsksAboutWhatIsMissing(t *testing.T) {
	t.Parallel()
	at := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	listed := func(id, version int64) changeevent.ListedConference {
		return changeevent.ListConference(changeevent.Conference{
			ID: id, Href: changeevent.Href(id), Name: "C", Starts: at, Ends: at.Add(time.Hour), MaxAttendees: 5,
			Location: changeevent.Location{Name: "Hall", City: "Lyon"},
		}, version, at, "/api/locations/1/")
	}
	known := map[int64]int64{1: 1, 2: 1, 5: 3, 4: 2}
	d, err := diffList(known, []changeevent.ListedConference{listed(3, 1), listed(1, 1), listed(2, 2)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range d.changes {
		got = append(got, c.EventID)
	}
	// New (3) and changed (2), in list order; unchanged (1) is left out.
	if diff := cmp.Diff([]string{changeevent.SourceEventID(3, 1), changeevent.SourceEventID(2, 2)}, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{4, 5}, d.missing); diff != "" {
		t.Errorf("missing (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[int64]int64{1: 1, 2: 2, 3: 1}, d.listed); diff != "" {
		t.Errorf("listed (-want +got):\n%s", diff)
	}
	e, err := d.changes[1].Event()
	if err != nil {
		t.Fatal(err)
	}
	want := changeevent.Event{ID: changeevent.SourceEventID(2, 2), Type: changeevent.Updated, ConferenceID: 2, Version: 2, OccurredAt: at,
		Data: &changeevent.Conference{ID: 2, Href: changeevent.Href(2), Name: "C", Starts: at, Ends: at.Add(time.Hour), MaxAttendees: 5,
			Location: changeevent.Location{Name: "Hall", City: "Lyon"}}}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("the change of conference 2 (-want +got):\n%s", diff)
	}
}

func TestDiffListOfTheFirstListHandsOverEverything(t *testing.T) {
	t.Parallel()
	at := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	c := changeevent.ListConference(changeevent.Conference{ID: 7, Name: "C", Starts: at, Ends: at}, 1, at, "")
	d, err := diffList(nil, []changeevent.ListedConference{c})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.changes) != 1 || d.changes[0].Type != changeevent.Created || len(d.missing) != 0 {
		t.Errorf("diff of the first list = %+v, want one created change and nothing missing", d)
	}
}

func TestNextStep(t *testing.T) {
	t.Parallel()
	now := time.Now()
	for name, tc := range map[string]struct {
		p    Poller
		want step
	}{
		"never listed":         {Poller{cfg: Config{Mode: ModeFeed}}, stepReconcile},
		"listed, feed":         {Poller{cfg: Config{Mode: ModeFeed}, listed: true, lastReconcile: now}, stepFollow},
		"listed, list":         {Poller{cfg: Config{Mode: ModeList}, listed: true, lastReconcile: now}, stepList},
		"periodic one due":     {Poller{cfg: Config{Mode: ModeFeed, ReconcileInterval: time.Minute}, listed: true, lastReconcile: now.Add(-time.Minute)}, stepReconcile},
		"periodic one not due": {Poller{cfg: Config{Mode: ModeList, ReconcileInterval: time.Minute}, listed: true, lastReconcile: now.Add(-time.Second)}, stepList},
	} {
		if got := tc.p.next(now); got != tc.want {
			t.Errorf("%s: next = %d, want %d", name, got, tc.want)
		}
	}
}
