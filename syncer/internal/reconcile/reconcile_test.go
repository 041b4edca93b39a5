package reconcile_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"conferencego/syncer/internal/reconcile"
	"conferencego/syncer/internal/syncapi"
	"conferencego/syncer/internal/synctest"
)

type bundle struct {
	src *synctest.Source
	dst *synctest.Attendee
	rec *reconcile.Reconciler
}

func setup(t *testing.T) bundle {
	t.Helper()
	src, srcURL := synctest.NewSource(t, "source-a")
	dst, dstURL := synctest.NewAttendee(t)
	client := &http.Client{Timeout: 10 * time.Second}
	rec, err := reconcile.New(slog.New(slog.NewTextHandler(io.Discard, nil)),
		&syncapi.Source{Base: srcURL, Client: client}, &syncapi.Attendee{Base: dstURL, Token: "t", Client: client},
		reconcile.Config{PageSize: 7, Chunk: 5, Suspects: 3}) // small, so that every page and chunk boundary is crossed
	if err != nil {
		t.Fatal(err)
	}
	return bundle{src, dst, rec}
}

// want is what the copy must hold after a reconcile: the source's versions, and a tombstone of
// version 0 for each id the source does not know.
func want(src map[int64]int64, unknown ...int64) map[int64]int64 {
	for _, id := range unknown {
		src[id] = 0
	}
	return src
}

func run(t *testing.T, b bundle) reconcile.Result {
	t.Helper()
	res, err := b.rec.Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func TestReconcileMakesTheCopyEqualToTheSource(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for id := int64(1); id <= 40; id++ {
		b.src.Set(id, id%4+1)
	}
	for id := int64(41); id <= 45; id++ {
		b.src.Delete(id, 3)
	}
	b.dst.Force(2, 1, false)    // behind
	b.dst.Force(3, 1<<62, true) // a forged delete far ahead of a live conference
	b.dst.Force(4, 9, false)    // ahead
	b.dst.Force(41, 1, false)   // deleted at the source, live here
	b.dst.Force(99, 5, false)   // never at the source
	res := run(t, b)
	if diff := cmp.Diff(want(b.src.Versions(), 99), b.dst.Versions()); diff != "" {
		t.Errorf("copy after reconcile (-want +got):\n%s", diff)
	}
	if res.Repaired != 3 || res.Source != "source-a" || res.Cursor == "" {
		t.Errorf("result %+v: want 3 repairs, the source's id and a cursor", res)
	}
	again := run(t, b)
	if again.HandedOver != 0 || again.Repaired != 0 {
		t.Errorf("a second reconcile did work: %+v", again)
	}
}

// A listing cut short (a proxy that drops every page after the first) or an empty source
// costs look-ups, never deletes.
func TestTruncatedListingDeletesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for id := int64(1); id <= 30; id++ {
		b.src.Set(id, 2)
	}
	run(t, b)
	b.src.Truncate = true
	b.src.Set(25, 3)
	res := run(t, b)
	if diff := cmp.Diff(b.src.Versions(), b.dst.Versions()); diff != "" {
		t.Errorf("copy after a truncated listing (-want +got):\n%s", diff)
	}
	if res.Listed != 7 || res.LookedUp < 23 {
		t.Errorf("result %+v: want 7 listed and the other 23 looked up", res)
	}
}

func TestAnotherSourceIsRefusedBeforeAnythingIsHandedOver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.src.Set(1, 1)
	b.dst.Bind("source-b")
	b.dst.Force(7, 3, false)
	_, err := b.rec.Run(context.Background())
	var m *syncapi.MismatchError
	if !errors.As(err, &m) || m.Bound != "source-b" || m.Seen != "source-a" {
		t.Fatalf("err = %v, want a mismatch naming both sources", err)
	}
	if diff := cmp.Diff(map[int64]int64{7: 3}, b.dst.Versions()); diff != "" {
		t.Errorf("the copy changed (-want +got):\n%s", diff)
	}
}

// A reconcile that has nothing to hand over still binds the copy, so that a wrong database
// met later is refused instead of obeyed.
func TestEmptyReconcileBindsTheCopy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	run(t, b)
	b.src.ID = "source-b"
	b.dst.Force(3, 2, false)
	if _, err := b.rec.Run(context.Background()); !errors.Is(err, syncapi.ErrSourceMismatch) {
		t.Fatalf("reconcile against another source after an empty first one: err = %v, want a mismatch", err)
	}
	if diff := cmp.Diff(map[int64]int64{3: 2}, b.dst.Versions()); diff != "" {
		t.Errorf("the copy changed (-want +got):\n%s", diff)
	}
}
