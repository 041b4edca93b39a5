// Package reconcile makes api-attendee's copy equal to the source, from facts only.
//
// A run reads the source's state listing (every conference it knows, live or tombstoned, by
// id) and the copy (by id) page by page, side by side, so memory stays flat however many
// conferences there are. Where the copy is behind, it hands the source's state over through the
// version-guarded apply. Where the copy holds a conference the listing lacks, or a version the
// listing is behind, it does not conclude anything from that: it asks the source about those
// conferences by id, after having read the copy. Only what the source then says wins:
//
//   - the source is ahead: an ordinary hand-over;
//   - the copy is ahead (a version the source never reached, so a fault put it there): a
//     repair, which sets the copy to the source's state if the copy still holds the version
//     that was seen, and then a second look-up hands over whatever changed in between;
//   - the source does not know the conference at all: a repair to a tombstone of version 0,
//     which anything the source sends later outranks.
//
// A listing cut short by a proxy or a bug therefore costs look-ups, never deletes.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"conferencego/syncer/changeevent"
	"conferencego/syncer/internal/syncapi"
)

// Config holds a Reconciler's settings.
type Config struct {
	// PageSize is the limit of each page read from either side (1…changeevent.MaxPage).
	PageSize int
	// Chunk bounds one hand-over; Suspects bounds one look-up.
	Chunk, Suspects int
}

func (c *Config) setDefaults() {
	if c.PageSize == 0 {
		c.PageSize = changeevent.MaxPage
	}
	if c.Chunk == 0 {
		c.Chunk = 500
	}
	if c.Suspects == 0 {
		c.Suspects = 200
	}
}

// Reconciler runs reconciles. It holds no state between runs.
type Reconciler struct {
	cfg Config
	src *syncapi.Source
	dst *syncapi.Attendee
	log *slog.Logger
}

// New returns a Reconciler between src and dst.
func New(log *slog.Logger, src *syncapi.Source, dst *syncapi.Attendee, cfg Config) (*Reconciler, error) {
	cfg.setDefaults()
	if cfg.PageSize < 1 || cfg.PageSize > changeevent.MaxPage || cfg.Chunk < 1 || cfg.Suspects < 1 || cfg.Suspects > changeevent.MaxPage {
		return nil, fmt.Errorf("reconcile: page size %d, chunk %d or suspects %d out of range", cfg.PageSize, cfg.Chunk, cfg.Suspects)
	}
	return &Reconciler{cfg: cfg, src: src, dst: dst, log: log}, nil
}

// Result says what a run did.
type Result struct {
	// Source is the source's identity, which the copy is now bound to.
	Source string
	// Cursor is the feed position as of the start of the listing: following the feed from it
	// misses no change made during or after the run.
	Cursor string
	// Listed counts what the source listed, ConferenceVOs what the copy held.
	Listed, ConferenceVOs int
	// HandedOver counts changes sent through the guarded apply, Applied those that changed a
	// row, Repaired the rows the source overruled.
	HandedOver, Applied, Repaired int
	// LookedUp counts conferences asked about by id.
	LookedUp int
	Took     time.Duration
}

// Run reconciles once. A copy bound to another source stops it with an error wrapping
// syncapi.ErrSourceMismatch, before anything is handed over.
func (r *Reconciler) Run(ctx context.Context) (Result, error) {
	start := time.Now()
	binding, err := r.dst.Binding(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("read the copy's source: %w", err)
	}
	first, err := r.src.State(ctx, 0, r.cfg.PageSize)
	if err != nil {
		return Result{}, fmt.Errorf("list the source: %w", err)
	}
	switch {
	case binding.Source == "":
		// Bind first, with an empty hand-over: a reconcile that finds nothing to hand over
		// must still tie the copy to this source, or a wrong database met later would be
		// taken for the source and obeyed.
		if _, err := r.dst.Handover(ctx, first.Source, nil); err != nil {
			return Result{}, fmt.Errorf("bind the copy to source %s: %w", first.Source, err)
		}
	case binding.Source != first.Source:
		return Result{}, &syncapi.MismatchError{Bound: binding.Source, Seen: first.Source}
	}
	run := &run{r: r, ctx: ctx, source: first.Source, res: Result{Source: first.Source, Cursor: first.Cursor}}
	if err := run.merge(first); err != nil {
		return run.res, err
	}
	run.res.Took = time.Since(start)
	return run.res, nil
}

// run is the state of one reconcile.
type run struct {
	r        *Reconciler
	ctx      context.Context
	source   string
	res      Result
	apply    []changeevent.Change
	suspects []changeevent.ConferenceVO
}

// merge walks the source's listing and the copy in id order, side by side.
func (u *run) merge(first changeevent.StatePage) error {
	src := &pager[changeevent.Change]{items: first.Conferences, more: first.Next != nil}
	src.fetch = func(after int64) ([]changeevent.Change, bool, error) {
		p, err := u.r.src.State(u.ctx, after, u.r.cfg.PageSize)
		if err != nil {
			return nil, false, fmt.Errorf("list the source: %w", err)
		}
		if p.Source != u.source {
			return nil, false, &syncapi.MismatchError{Bound: u.source, Seen: p.Source}
		}
		return p.Conferences, p.Next != nil, nil
	}
	src.id = func(c changeevent.Change) int64 { return c.ConferenceID }
	dst := &pager[changeevent.ConferenceVO]{more: true, id: func(c changeevent.ConferenceVO) int64 { return c.ID }}
	dst.fetch = func(after int64) ([]changeevent.ConferenceVO, bool, error) {
		p, err := u.r.dst.ConferenceVOs(u.ctx, after, u.r.cfg.PageSize)
		if err != nil {
			return nil, false, fmt.Errorf("read the copy: %w", err)
		}
		return p.Conferences, p.Next != nil, nil
	}
	for {
		s, sok, err := src.peek()
		if err != nil {
			return err
		}
		c, cok, err := dst.peek()
		if err != nil {
			return err
		}
		switch {
		case !sok && !cok:
			if err := u.flushApply(); err != nil {
				return err
			}
			return u.flushSuspects()
		case sok && (!cok || s.ConferenceID < c.ID):
			u.res.Listed++
			src.next()
			err = u.handOver(s)
		case !sok || c.ID < s.ConferenceID:
			u.res.ConferenceVOs++
			dst.next()
			err = u.suspect(c)
		default:
			u.res.Listed++
			u.res.ConferenceVOs++
			src.next()
			dst.next()
			switch {
			case c.Version < s.Version:
				err = u.handOver(s)
			case c.Version > s.Version || c.Deleted != (s.Type == changeevent.Deleted):
				err = u.suspect(c)
			}
		}
		if err != nil {
			return err
		}
	}
}

func (u *run) handOver(c changeevent.Change) error {
	u.apply = append(u.apply, c)
	if len(u.apply) >= u.r.cfg.Chunk {
		return u.flushApply()
	}
	return nil
}

func (u *run) flushApply() error {
	if len(u.apply) == 0 {
		return nil
	}
	out, err := u.r.dst.Handover(u.ctx, u.source, u.apply)
	if err != nil {
		return fmt.Errorf("hand over %d changes: %w", len(u.apply), err)
	}
	u.res.HandedOver += len(u.apply)
	u.res.Applied += out.Applied
	u.apply = u.apply[:0]
	return nil
}

func (u *run) suspect(c changeevent.ConferenceVO) error {
	// A tombstone of version 0 is already what the copy holds for a conference the source
	// does not know; asking again would only repeat that.
	if c.Deleted && c.Version == 0 {
		return nil
	}
	u.suspects = append(u.suspects, c)
	if len(u.suspects) >= u.r.cfg.Suspects {
		return u.flushSuspects()
	}
	return nil
}

// flushSuspects asks the source about each suspect and acts on its answer.
func (u *run) flushSuspects() error {
	if len(u.suspects) == 0 {
		return nil
	}
	if err := u.flushApply(); err != nil {
		return err
	}
	facts, err := u.lookup(u.suspects)
	if err != nil {
		return err
	}
	var repairs []changeevent.Repair
	for _, c := range u.suspects {
		s, known := facts[c.ID]
		switch {
		case !known:
			repairs = append(repairs, changeevent.Repair{ConferenceID: c.ID, Replaces: c.Version})
		case s.Version > c.Version:
			u.apply = append(u.apply, s)
		case s.Version < c.Version || c.Deleted != (s.Type == changeevent.Deleted):
			repairs = append(repairs, changeevent.Repair{ConferenceID: c.ID, Replaces: c.Version, Change: &s})
		}
	}
	if err := u.flushApply(); err != nil {
		return err
	}
	if len(repairs) > 0 {
		out, err := u.r.dst.Repair(u.ctx, u.source, repairs)
		if err != nil {
			return fmt.Errorf("repair %d conferences: %w", len(repairs), err)
		}
		u.res.Repaired += out.Applied
		u.r.log.Warn("the copy was ahead of the source or held conferences it does not know; the source's state won",
			"conferences", len(repairs), "repaired", out.Applied)
		// While the copy was ahead, its version guard refused the source's real changes. Ask
		// once more and hand over what the source has now: it outranks the repaired rows.
		again := make([]changeevent.ConferenceVO, len(repairs))
		for i, rp := range repairs {
			again[i] = changeevent.ConferenceVO{ID: rp.ConferenceID}
		}
		facts, err := u.lookup(again)
		if err != nil {
			return err
		}
		for _, rp := range repairs {
			if s, ok := facts[rp.ConferenceID]; ok {
				u.apply = append(u.apply, s)
			}
		}
		if err := u.flushApply(); err != nil {
			return err
		}
	}
	u.suspects = u.suspects[:0]
	return nil
}

// lookup asks the source about copies by id. Every id comes back as a fact: in facts, or in
// the source's explicit list of ids it does not know; an answer that leaves one out is refused,
// so that a proxy's empty answer is never taken for "unknown".
func (u *run) lookup(copies []changeevent.ConferenceVO) (map[int64]changeevent.Change, error) {
	ids := make([]int64, len(copies))
	for i, c := range copies {
		ids[i] = c.ID
	}
	page, err := u.r.src.Lookup(u.ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("look up %d conferences at the source: %w", len(ids), err)
	}
	if page.Source != u.source {
		return nil, &syncapi.MismatchError{Bound: u.source, Seen: page.Source}
	}
	u.res.LookedUp += len(ids)
	facts, err := syncapi.Facts(ids, page)
	if err != nil {
		return nil, fmt.Errorf("look up %d conferences at the source: %w", len(ids), err)
	}
	return facts, nil
}

// pager walks pages of items sorted by id.
type pager[T any] struct {
	items []T
	more  bool
	fetch func(after int64) ([]T, bool, error)
	id    func(T) int64
	last  int64
}

func (p *pager[T]) peek() (T, bool, error) {
	var zero T
	for len(p.items) == 0 {
		if !p.more {
			return zero, false, nil
		}
		items, more, err := p.fetch(p.last)
		if err != nil {
			return zero, false, err
		}
		if len(items) == 0 && more {
			return zero, false, errors.New("an empty page that says more follow")
		}
		p.items, p.more = items, more
	}
	it := p.items[0]
	if id := p.id(it); id <= p.last {
		return zero, false, fmt.Errorf("ids out of order: %d after %d", id, p.last)
	}
	return it, true, nil
}

func (p *pager[T]) next() {
	p.last = p.id(p.items[0])
	p.items = p.items[1:]
}
