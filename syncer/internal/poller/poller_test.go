package poller

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"conferencego/syncer/changeevent"
	"conferencego/syncer/internal/reconcile"
	"conferencego/syncer/internal/syncapi"
	"conferencego/syncer/internal/synctest"
)

type bundle struct {
	p     *Poller
	src   *synctest.Source
	dst   *synctest.Attendee
	guard *reconcile.Guard
}

func setup(t *testing.T, mode string, srcHandler func(*synctest.Source) http.Handler) bundle {
	t.Helper()
	src, srcURL := synctest.NewSource(t, "source-a")
	if srcHandler != nil {
		srv := httptest.NewServer(srcHandler(src))
		t.Cleanup(srv.Close)
		srcURL = srv.URL
	}
	dst, dstURL := synctest.NewAttendee(t)
	client := &http.Client{Timeout: 10 * time.Second}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &syncapi.Source{Base: srcURL, Client: client}
	d := &syncapi.Attendee{Base: dstURL, Token: "t", Client: client}
	rec, err := reconcile.New(log, s, d, reconcile.Config{PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	guard := reconcile.NewGuard(reg)
	p, err := New(log, s, d, rec, guard, Config{Mode: mode, Interval: time.Second, PageSize: 10}, reg)
	if err != nil {
		t.Fatal(err)
	}
	return bundle{p, src, dst, guard}
}

func poll(t *testing.T, p *Poller) Result {
	t.Helper()
	res, err := p.runOnce(context.Background())
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	return res
}

func TestFeedReadsOnlyWhatChanged(t *testing.T) {
	t.Parallel()
	b := setup(t, ModeFeed, nil)
	for id := int64(1); id <= 35; id++ {
		b.src.Set(id, 1)
	}
	if res := poll(t, b.p); !res.Reconciled || res.Sent != 35 {
		t.Fatalf("first poll %+v: want a reconcile of 35", res)
	}
	if res := poll(t, b.p); !res.NotModified {
		t.Errorf("idle poll %+v: want nothing new", res)
	}
	b.src.Set(17, 2)
	b.src.Delete(3, 2)
	if res := poll(t, b.p); res.Sent != 2 || res.Pages != 1 {
		t.Errorf("poll after two changes %+v: want exactly those two, in one page", res)
	}
	if diff := cmp.Diff(b.src.Versions(), b.dst.Versions()); diff != "" {
		t.Errorf("copy (-source +copy):\n%s", diff)
	}
}

func TestGoneCursorListsAgain(t *testing.T) {
	t.Parallel()
	b := setup(t, ModeFeed, nil)
	b.src.Set(1, 1)
	poll(t, b.p)
	b.src.Delete(1, 2)
	b.src.Gone = 1000
	if res := poll(t, b.p); !res.Reconciled {
		t.Errorf("poll after 410 %+v: want a reconcile", res)
	}
	if diff := cmp.Diff(b.src.Versions(), b.dst.Versions()); diff != "" {
		t.Errorf("copy (-source +copy):\n%s", diff)
	}
}

// The source restarted against another database: nothing is handed over, the guard says so,
// and when the right database is back hand-overs resume by themselves.
func TestAnotherSourceStopsHandOversUntilTheOriginalReturns(t *testing.T) {
	t.Parallel()
	b := setup(t, ModeFeed, nil)
	for id := int64(1); id <= 5; id++ {
		b.src.Set(id, 1)
	}
	poll(t, b.p)
	before := b.dst.Versions()
	b.src.ID = "source-b"
	for range 3 {
		if _, err := b.p.runOnce(context.Background()); !errors.Is(err, syncapi.ErrSourceMismatch) {
			t.Fatalf("poll against another source: err = %v, want a mismatch", err)
		} else {
			b.guard.Note(err)
		}
	}
	if b.guard.Err() == nil {
		t.Error("the guard does not report the mismatch")
	}
	if diff := cmp.Diff(before, b.dst.Versions()); diff != "" {
		t.Errorf("the copy changed while the source was wrong (-before +after):\n%s", diff)
	}
	b.src.ID = "source-a"
	b.src.Set(2, 2)
	poll(t, b.p)
	if b.guard.Err() != nil {
		t.Error("the guard still reports a mismatch")
	}
	if diff := cmp.Diff(b.src.Versions(), b.dst.Versions()); diff != "" {
		t.Errorf("copy (-source +copy):\n%s", diff)
	}
}

// listSource serves the public list (the seed's way) from a Source's live conferences, or an
// empty list when empty is set.
type listSource struct {
	src   *synctest.Source
	empty *bool
}

func (l listSource) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/conferences/" {
		l.src.ServeHTTP(w, r)
		return
	}
	page := listPage{Conferences: []changeevent.ListedConference{}}
	if !*l.empty {
		for id, v := range l.src.Versions() {
			if v > 0 {
				c := changeevent.Conference{ID: id, Name: "C", Starts: time.Unix(0, 0).UTC(), Ends: time.Unix(3600, 0).UTC()}
				page.Conferences = append(page.Conferences, changeevent.ListConference(c, v, time.Now().UTC(), ""))
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = jsonEncode(w, page)
}

func TestListModeTakesDeletesFromTheSourceNotFromAbsence(t *testing.T) {
	t.Parallel()
	empty := false
	b := setup(t, ModeList, func(s *synctest.Source) http.Handler { return listSource{s, &empty} })
	for id := int64(1); id <= 8; id++ {
		b.src.Set(id, 1)
	}
	poll(t, b.p) // reconcile
	poll(t, b.p) // the first list
	b.src.Delete(4, 2)
	poll(t, b.p)
	empty = true // a broken list: every conference missing
	poll(t, b.p)
	if diff := cmp.Diff(b.src.Versions(), b.dst.Versions()); diff != "" {
		t.Errorf("copy (-source +copy):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"unknown mode":   {Mode: "diff"},
		"tiny interval":  {Interval: time.Microsecond},
		"huge page size": {PageSize: changeevent.MaxPage + 1},
		"negative":       {ReconcileInterval: -time.Second},
	} {
		cfg.setDefaults()
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func jsonEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }
