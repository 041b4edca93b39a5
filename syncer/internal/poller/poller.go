// Package poller is pull mode's half of the syncer: it asks api-conference what changed and
// hands it to api-attendee's internal endpoint.
//
// By default (ModeFeed) it follows api-conference's change feed: at start, after a 410 Gone
// and every ReconcileInterval it reconciles (lists the source's state page by page and makes
// the copy equal to it, see package reconcile), then follows the feed from the cursor that
// listing gave. A poll after one change reads that one change, whatever the size of the table;
// an idle poll is one empty page. Deletes arrive as the source's own tombstones, with the
// source's own versions.
//
// ModeList is the seed's way, kept for the comparison: every changed interval it reads the
// whole conference list and hands over what has a new version. It never reads a conference's
// absence from the list as a delete: it asks the source about each missing conference by id,
// and hands over the tombstone the source answers with.
//
// Either way every hand-over names the source, and a source other than the one the copy is
// bound to stops the hand-overs (see reconcile.Guard) until the original comes back or an
// operator accepts the new one.
package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"conferencego/syncer/backoff"
	"conferencego/syncer/changeevent"
	"conferencego/syncer/internal/reconcile"
	"conferencego/syncer/internal/syncapi"
)

// Ways of polling.
const (
	ModeFeed = "feed"
	ModeList = "list"
)

// Config holds the poller's settings.
type Config struct {
	// Mode is ModeFeed (default) or ModeList.
	Mode     string
	Interval time.Duration
	// ReconcileInterval is how often a full reconcile runs besides the one at start; zero
	// turns the periodic one off.
	ReconcileInterval time.Duration
	// PageSize is the limit asked of each page.
	PageSize int
}

func (c *Config) setDefaults() {
	if c.Mode == "" {
		c.Mode = ModeFeed
	}
	if c.Interval == 0 {
		c.Interval = 5 * time.Second
	}
	if c.PageSize == 0 {
		c.PageSize = changeevent.MaxPage
	}
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.Mode != ModeFeed && c.Mode != ModeList {
		errs = append(errs, fmt.Errorf("mode %q is neither %s nor %s", c.Mode, ModeFeed, ModeList))
	}
	if c.Interval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("interval %s is below 10ms", c.Interval))
	}
	if c.ReconcileInterval < 0 {
		errs = append(errs, errors.New("reconcile interval is negative"))
	}
	if c.PageSize < 1 || c.PageSize > changeevent.MaxPage {
		errs = append(errs, fmt.Errorf("page size %d is not within 1…%d", c.PageSize, changeevent.MaxPage))
	}
	return errors.Join(errs...)
}

// Poller polls the source. It is not safe for concurrent use: Run holds at most one poll in
// flight by construction.
type Poller struct {
	cfg   Config
	log   *slog.Logger
	m     *metrics
	src   *syncapi.Source
	dst   *syncapi.Attendee
	rec   *reconcile.Reconciler
	guard *reconcile.Guard

	// source is the source the copy is bound to, "" until the first reconcile; cursor is the
	// feed position handed over so far.
	source, cursor string
	// listed is false until a reconcile succeeded, and again after a 410 or a mismatch.
	listed        bool
	lastReconcile time.Time

	// List mode: the ETag and versions of the last list handed over.
	etag  string
	known map[int64]int64
}

// New returns a poller from src to dst. Its metrics count what src sends.
func New(log *slog.Logger, src *syncapi.Source, dst *syncapi.Attendee, rec *reconcile.Reconciler, guard *reconcile.Guard, cfg Config, reg prometheus.Registerer) (*Poller, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := newMetrics(reg)
	src.Observe = func(n int) {
		m.requests.Inc()
		m.bytes.Add(float64(n))
	}
	return &Poller{cfg: cfg, log: log, m: m, src: src, dst: dst, rec: rec, guard: guard}, nil
}

// Run polls every Interval until ctx ends, and returns nil then. A failed poll is retried with
// a growing, jittered delay instead of the interval, so an absent service is not hammered.
func (p *Poller) Run(ctx context.Context) error {
	bo := backoff.New(p.cfg.Interval, max(p.cfg.Interval, 30*time.Second))
	for {
		wait := p.cfg.Interval
		if _, err := p.runOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.m.errors.Inc()
			wait = bo.Next()
			if mismatch, fresh := p.guard.Note(err); mismatch {
				if fresh {
					p.log.Error("api-conference is another database than the one api-attendee's copy was made from; "+
						"handing nothing over and keeping the copy as it is. If the new source is right, accept it with "+
						"DELETE /internal/source on api-attendee (see the README)", "err", err)
				}
			} else {
				p.log.Warn("poll failed; retrying", "err", err, "retry_in", wait.Round(time.Millisecond).String())
			}
		} else {
			bo.Reset()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Result says what one poll did.
type Result struct {
	Reconciled  bool
	NotModified bool
	Pages       int
	Sent        int // changes handed over
	Applied     int // changes api-attendee applied
}

// runOnce polls once: a reconcile when one is due, else the feed or the list.
func (p *Poller) runOnce(ctx context.Context) (Result, error) {
	due := p.cfg.ReconcileInterval > 0 && time.Since(p.lastReconcile) >= p.cfg.ReconcileInterval
	if !p.listed || due {
		return p.reconcile(ctx)
	}
	if p.cfg.Mode == ModeList {
		return p.pollList(ctx)
	}
	return p.follow(ctx)
}

func (p *Poller) reconcile(ctx context.Context) (Result, error) {
	res, err := p.rec.Run(ctx)
	if err != nil {
		p.listed = false
		return Result{}, fmt.Errorf("reconcile: %w", err)
	}
	if p.guard.Clear() {
		p.log.Warn("api-conference is the copy's source again; handing over resumes", "source", res.Source)
	}
	p.source, p.cursor, p.listed, p.lastReconcile = res.Source, res.Cursor, true, time.Now()
	p.etag, p.known = "", nil
	p.m.reconciles.Inc()
	p.m.handedOver.Add(float64(res.HandedOver))
	p.log.Info("reconciled api-attendee with the source", "source", res.Source, "listed", res.Listed, "conference_vos", res.ConferenceVOs,
		"handed_over", res.HandedOver, "applied", res.Applied, "looked_up", res.LookedUp, "repaired", res.Repaired,
		"took", res.Took.Round(time.Millisecond).String())
	return Result{Reconciled: true, Sent: res.HandedOver, Applied: res.Applied}, nil
}

// maxPagesPerPoll bounds one poll, so that a long backlog still lets the loop breathe.
const maxPagesPerPoll = 1000

// follow reads the feed from the cursor and hands each page over.
func (p *Poller) follow(ctx context.Context) (Result, error) {
	var res Result
	for range maxPagesPerPoll {
		page, err := p.src.Feed(ctx, p.cursor, p.cfg.PageSize)
		if errors.Is(err, syncapi.ErrGone) {
			// The source pruned tombstones past our cursor: some deletes may be unseen.
			p.listed = false
			p.log.Warn("the change feed no longer reaches our cursor; listing the source again", "cursor", p.cursor)
			return p.reconcile(ctx)
		}
		if err != nil {
			return res, err
		}
		if page.Source != p.source {
			p.listed = false
			return res, &syncapi.MismatchError{Bound: p.source, Seen: page.Source}
		}
		res.Pages++
		if len(page.Changes) == 0 {
			p.cursor = page.Next
			if res.Pages == 1 {
				res.NotModified = true
				p.m.notModified.Inc()
			}
			return res, nil
		}
		out, err := p.dst.Handover(ctx, p.source, page.Changes)
		if err != nil {
			return res, fmt.Errorf("hand over %d changes: %w", len(page.Changes), err)
		}
		p.cursor = page.Next
		res.Sent += len(page.Changes)
		res.Applied += out.Applied
		p.m.handedOver.Add(float64(len(page.Changes)))
		if !page.More {
			break
		}
	}
	p.log.Info("handed changes to api-attendee", "sent", res.Sent, "applied", res.Applied, "pages", res.Pages)
	return res, nil
}

// pollList is the seed's way: read the whole list when its ETag changed.
func (p *Poller) pollList(ctx context.Context) (Result, error) {
	items, etag, pages, err := p.fetchList(ctx, p.etag)
	if err != nil {
		return Result{}, err
	}
	if items == nil {
		p.m.notModified.Inc()
		return Result{NotModified: true, Pages: 1}, nil
	}
	// The list carries no source; one small state page does.
	probe, err := p.src.State(ctx, 0, 1)
	if err != nil {
		return Result{}, err
	}
	if probe.Source != p.source {
		p.listed = false
		return Result{}, &syncapi.MismatchError{Bound: p.source, Seen: probe.Source}
	}
	res := Result{Pages: pages}
	current := make(map[int64]int64, len(items))
	var changes []changeevent.Change
	for _, it := range items {
		current[it.ID] = it.Version
		if v, ok := p.known[it.ID]; !ok || v != it.Version {
			c, err := it.change()
			if err != nil {
				return res, err
			}
			changes = append(changes, c)
		}
	}
	var missing []int64
	for id := range p.known {
		if _, ok := current[id]; !ok {
			missing = append(missing, id)
		}
	}
	if err := p.handOver(ctx, changes, &res); err != nil {
		return res, err
	}
	if err := p.settleMissing(ctx, missing, &res); err != nil {
		return res, err
	}
	p.etag, p.known = etag, current
	if res.Sent > 0 {
		p.log.Info("handed changes to api-attendee", "listed", len(items), "sent", res.Sent, "applied", res.Applied,
			"missing", len(missing), "pages", pages)
	}
	return res, nil
}

func (p *Poller) handOver(ctx context.Context, changes []changeevent.Change, res *Result) error {
	const chunk = 500
	for start := 0; start < len(changes); start += chunk {
		part := changes[start:min(start+chunk, len(changes))]
		out, err := p.dst.Handover(ctx, p.source, part)
		if err != nil {
			return fmt.Errorf("hand over %d changes: %w", len(part), err)
		}
		res.Sent += len(part)
		res.Applied += out.Applied
		p.m.handedOver.Add(float64(len(part)))
	}
	return nil
}

// settleMissing asks the source about conferences the list no longer holds and hands over
// what it says: a tombstone with its version, or the conference itself when the list was
// merely short. One it does not know at all becomes a tombstone of version 0 in the copy,
// provided the copy still holds the version last handed over.
func (p *Poller) settleMissing(ctx context.Context, missing []int64, res *Result) error {
	for start := 0; start < len(missing); start += changeevent.MaxPage {
		ids := missing[start:min(start+changeevent.MaxPage, len(missing))]
		page, err := p.src.Lookup(ctx, ids)
		if err != nil {
			return fmt.Errorf("look up %d conferences missing from the list: %w", len(ids), err)
		}
		if page.Source != p.source {
			p.listed = false
			return &syncapi.MismatchError{Bound: p.source, Seen: page.Source}
		}
		facts, err := syncapi.Facts(ids, page)
		if err != nil {
			return fmt.Errorf("look up %d conferences missing from the list: %w", len(ids), err)
		}
		var repairs []changeevent.Repair
		for _, id := range ids {
			if _, ok := facts[id]; !ok {
				repairs = append(repairs, changeevent.Repair{ConferenceID: id, Replaces: p.known[id]})
			}
		}
		if err := p.handOver(ctx, page.Conferences, res); err != nil {
			return err
		}
		if len(repairs) > 0 {
			out, err := p.dst.Repair(ctx, p.source, repairs)
			if err != nil {
				return fmt.Errorf("repair %d conferences the source does not know: %w", len(repairs), err)
			}
			res.Applied += out.Applied
		}
	}
	return nil
}

// listItem is one conference of api-conference's public list.
type listItem struct {
	ID           int64     `json:"id"`
	Href         string    `json:"href"`
	Name         string    `json:"name"`
	Starts       time.Time `json:"starts"`
	Ends         time.Time `json:"ends"`
	MaxAttendees int       `json:"max_attendees"`
	Version      int64     `json:"version"`
	Updated      time.Time `json:"updated"`
	Location     struct {
		Name  string `json:"name"`
		City  string `json:"city"`
		State string `json:"state"`
	} `json:"location"`
}

// change is the conference as a change. Its time is the conference's last update at the
// source, so that lag is measured the same way as in the other modes.
func (it listItem) change() (changeevent.Change, error) {
	return changeevent.ChangeOf(changeevent.Event{
		ID: changeevent.SourceEventID(it.ID, it.Version), Type: changeevent.TypeFor(it.Version, false), ConferenceID: it.ID,
		Version: it.Version, OccurredAt: it.Updated,
		Data: &changeevent.Conference{
			ID: it.ID, Href: it.Href, Name: it.Name, Starts: it.Starts, Ends: it.Ends, MaxAttendees: it.MaxAttendees,
			Location: changeevent.Location{Name: it.Location.Name, City: it.Location.City, State: it.Location.State},
		},
	})
}

type listPage struct {
	Conferences []listItem `json:"conferences"`
	Next        *string    `json:"next"`
}

// maxPages stops a source whose next links go round in circles.
const maxPages = 100_000

// fetchList reads the whole public conference list. With etag set, an unchanged list answers
// nil items after one request. Any failed or malformed page fails the whole fetch.
func (p *Poller) fetchList(ctx context.Context, etag string) ([]listItem, string, int, error) {
	next := "/api/conferences/?limit=" + strconv.Itoa(p.cfg.PageSize)
	var (
		items     = []listItem{}
		newTag    string
		pages     int
		lastAfter string
	)
	for next != "" {
		if pages >= maxPages {
			return nil, "", pages, fmt.Errorf("conference list: more than %d pages", maxPages)
		}
		ref, err := url.Parse(next)
		if err != nil {
			return nil, "", pages, fmt.Errorf("conference list: next link %q: %w", next, err)
		}
		if after := ref.Query().Get("after"); pages > 0 && after == lastAfter {
			return nil, "", pages, fmt.Errorf("conference list: next link %q does not advance", next)
		} else {
			lastAfter = after
		}
		var page listPage
		tag, notModified, err := p.src.GetList(ctx, ref.RequestURI(), etagFor(pages, etag), &page)
		if err != nil {
			return nil, "", pages, err
		}
		if notModified {
			return nil, etag, 1, nil
		}
		if pages == 0 {
			newTag = tag
		}
		if page.Conferences == nil {
			return nil, "", pages, fmt.Errorf("GET %s: the page has no conferences list", next)
		}
		items = append(items, page.Conferences...)
		pages++
		next = ""
		if page.Next != nil {
			next = *page.Next
		}
	}
	return items, newTag, pages, nil
}

func etagFor(page int, etag string) string {
	if page == 0 {
		return etag
	}
	return ""
}
