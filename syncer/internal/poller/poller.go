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
	cfg Config
	log *slog.Logger
	m   *metrics
	src *syncapi.Source
	dst *syncapi.Attendee
	vos *reconcile.ConferenceVOs

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
	return &Poller{cfg: cfg, log: log, m: m, src: src, dst: dst, vos: reconcile.NewConferenceVOs(log, rec, guard)}, nil
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
			if !p.vos.NoteMismatch(err) {
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
	switch p.next(time.Now()) {
	case stepReconcile:
		return p.reconcile(ctx)
	case stepList:
		return p.pollList(ctx)
	}
	return p.follow(ctx)
}

// What a poll does.
type step int

const (
	stepFollow step = iota
	stepReconcile
	stepList
)

// next decides what the poll at now does, from what the poller knows only.
func (p *Poller) next(now time.Time) step {
	due := p.cfg.ReconcileInterval > 0 && now.Sub(p.lastReconcile) >= p.cfg.ReconcileInterval
	switch {
	case !p.listed || due:
		return stepReconcile
	case p.cfg.Mode == ModeList:
		return stepList
	}
	return stepFollow
}

func (p *Poller) reconcile(ctx context.Context) (Result, error) {
	res, err := p.vos.MatchSource(ctx)
	if err != nil {
		p.listed = false
		return Result{}, fmt.Errorf("reconcile: %w", err)
	}
	p.source, p.cursor, p.listed, p.lastReconcile = res.Source, res.Cursor, true, time.Now()
	p.etag, p.known = "", nil
	p.m.reconciles.Inc()
	p.m.handedOver.Add(float64(res.HandedOver))
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
