package poller

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"

	"conferencego/syncer/changeevent"
	"conferencego/syncer/internal/syncapi"
)

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
	d, err := diffList(p.known, items)
	if err != nil {
		return res, err
	}
	if err := p.handOver(ctx, d.changes, &res); err != nil {
		return res, err
	}
	if err := p.settleMissing(ctx, d.missing, &res); err != nil {
		return res, err
	}
	p.etag, p.known = etag, d.listed
	if res.Sent > 0 {
		p.log.Info("handed changes to api-attendee", "listed", len(items), "sent", res.Sent, "applied", res.Applied,
			"missing", len(d.missing), "pages", pages)
	}
	return res, nil
}

// listDiff is what a list says beyond what was handed over before.
type listDiff struct {
	// changes are the listed conferences whose version is new, in list order.
	changes []changeevent.Change
	// missing are the ids handed over before that the list lacks, in id order: absence proves
	// nothing, so the source is asked about each.
	missing []int64
	// listed is every listed conference's version by id.
	listed map[int64]int64
}

// diffList compares a list with the versions handed over before (known). It decides what to
// hand over and what to ask about, and does neither.
func diffList(known map[int64]int64, items []changeevent.ListedConference) (listDiff, error) {
	d := listDiff{listed: make(map[int64]int64, len(items))}
	for _, it := range items {
		d.listed[it.ID] = it.Version
		if v, ok := known[it.ID]; ok && v == it.Version {
			continue
		}
		c, err := change(it)
		if err != nil {
			return listDiff{}, err
		}
		d.changes = append(d.changes, c)
	}
	for id := range known {
		if _, ok := d.listed[id]; !ok {
			d.missing = append(d.missing, id)
		}
	}
	slices.Sort(d.missing)
	return d, nil
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

// change is a listed conference as a change. Its time is the conference's last update at the
// source, so that lag is measured the same way as in the other modes. The list is the public
// one and the syncer only passes it on: api-attendee validates what it is handed.
func change(it changeevent.ListedConference) (changeevent.Change, error) {
	data := it.Payload()
	return changeevent.ChangeOf(changeevent.Event{
		ID: changeevent.SourceEventID(it.ID, it.Version), Type: changeevent.TypeFor(it.Version, false), ConferenceID: it.ID,
		Version: it.Version, OccurredAt: it.Updated, Data: &data,
	})
}

// listPage is a page of the public list.
type listPage struct {
	Conferences []changeevent.ListedConference `json:"conferences"`
	Next        *string                        `json:"next"`
}

// maxPages stops a source whose next links go round in circles.
const maxPages = 100_000

// fetchList reads the whole public conference list. With etag set, an unchanged list answers
// nil items after one request. Any failed or malformed page fails the whole fetch.
func (p *Poller) fetchList(ctx context.Context, etag string) ([]changeevent.ListedConference, string, int, error) {
	next := changeevent.PathList + "?limit=" + strconv.Itoa(p.cfg.PageSize)
	var (
		items     = []changeevent.ListedConference{}
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
