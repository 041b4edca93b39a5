// Package poller is pull mode's half of the syncer: it polls api-conference's conference list
// and hands what changed to api-attendee's internal endpoint.
//
// A poll sends the ETag of the last list it handed over; an unchanged list costs one 304. A
// changed list is read in full, page by page. Conferences that are new or have a new version
// go to /internal/changes, and so does a delete for each conference it saw before that is
// missing from the list: deletes are found by set difference, and only ever over a list that
// was read completely.
//
// After a start the poller knows nothing, so its first poll sends the whole list to
// /internal/snapshot, where api-attendee tombstones every conference the list does not hold
// (those deleted while no poller ran). api-attendee spares conferences changed after the
// snapshot was taken, and the source's clock says when that was only to the second, so one
// more snapshot follows a few seconds later to settle what the first spared.
package poller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"conferencego/syncer/changeevent"
	"conferencego/syncer/internal/backoff"
)

// Config holds the poller's settings.
type Config struct {
	ConferenceURL string // base URL of api-conference
	AttendeeURL   string // base URL of api-attendee
	Token         string // bearer token of api-attendee's internal endpoint
	Interval      time.Duration
	// PageSize is the limit asked of each page of the conference list.
	PageSize int
	// FollowUp is how long after the first snapshot the second one is sent.
	FollowUp time.Duration
	// Client makes every request; its Timeout bounds each one.
	Client *http.Client
}

func (c *Config) setDefaults() {
	if c.Interval == 0 {
		c.Interval = 5 * time.Second
	}
	if c.PageSize == 0 {
		c.PageSize = 1000
	}
	if c.FollowUp == 0 {
		c.FollowUp = 3 * time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 30 * time.Second}
	}
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	for name, u := range map[string]string{"conference URL": c.ConferenceURL, "attendee URL": c.AttendeeURL} {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s %q is not an http(s) URL", name, u))
		}
	}
	if c.Token == "" {
		errs = append(errs, errors.New("the attendee token is empty"))
	}
	if c.Interval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("interval %s is below 10ms", c.Interval))
	}
	if c.PageSize < 1 || c.PageSize > 1000 {
		errs = append(errs, fmt.Errorf("page size %d is not within 1…1000", c.PageSize))
	}
	return errors.Join(errs...)
}

// Poller polls the conference list. It is not safe for concurrent use: Run holds at most one
// poll in flight by construction.
type Poller struct {
	cfg  Config
	log  *slog.Logger
	m    *metrics
	etag string
	// known maps every conference of the last list handed over to its version; nil until the
	// first hand-off succeeded.
	known map[int64]int64
	// followUpAt is when the follow-up snapshot is due; zero when none is.
	followUpAt time.Time
}

// New returns a poller.
func New(log *slog.Logger, cfg Config, reg prometheus.Registerer) (*Poller, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Poller{cfg: cfg, log: log, m: newMetrics(reg)}, nil
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
			p.log.Warn("poll failed; retrying", "err", err, "retry_in", wait.Round(time.Millisecond).String())
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
	NotModified bool
	Listed      int // conferences in the list
	Sent        int // changes handed over
	Snapshot    bool
	Applied     int // changes api-attendee applied
	Tombstoned  int
}

// runOnce polls once.
func (p *Poller) runOnce(ctx context.Context) (Result, error) {
	first := p.known == nil
	snapshot := first || (!p.followUpAt.IsZero() && !time.Now().Before(p.followUpAt))
	etag := p.etag
	if snapshot {
		etag = "" // a snapshot needs the list, changed or not
	}
	list, err := p.fetch(ctx, etag)
	if err != nil {
		return Result{}, err
	}
	if list.notModified {
		p.m.notModified.Inc()
		return Result{NotModified: true}, nil
	}
	res := Result{Listed: len(list.items)}
	current := make(map[int64]int64, len(list.items))
	var changes []changeJSON
	for _, it := range list.items {
		current[it.ID] = it.Version
		if v, ok := p.known[it.ID]; !ok || v != it.Version {
			changes = append(changes, it.change())
		}
	}
	for id, v := range p.known {
		if _, ok := current[id]; !ok {
			// Gone from a complete list: deleted. api-conference gives a delete the version
			// after the last one; one we did not see in between only makes this tombstone's
			// version lower than the source's, which nothing in pull mode can outrank.
			changes = append(changes, changeJSON{
				EventID: fmt.Sprintf("pull-%d-v%d-deleted", id, v+1), Type: string(changeevent.Deleted),
				ConferenceID: id, Version: v + 1, OccurredAt: list.takenAt,
			})
		}
	}
	var out applyResult
	switch {
	case snapshot && len(list.items) > 0:
		// api-attendee refuses an empty snapshot (it cannot tell an empty source from a broken
		// one); with nothing listed there is nothing to send but the deletes below.
		res.Snapshot, res.Sent = true, len(list.items)
		all := make([]changeJSON, len(list.items))
		for i, it := range list.items {
			all[i] = it.change()
		}
		takenAt := list.takenAt
		out, err = p.post(ctx, "/internal/snapshot", snapshotRequest{Complete: true, TakenAt: &takenAt, Changes: all})
		if err == nil {
			var deletes []changeJSON
			for _, c := range changes {
				if c.Type == string(changeevent.Deleted) {
					deletes = append(deletes, c)
				}
			}
			if len(deletes) > 0 {
				var more applyResult
				more, err = p.post(ctx, "/internal/changes", changesRequest{Changes: deletes})
				out.Applied += more.Applied
				res.Sent += len(deletes)
			}
		}
	case len(changes) > 0:
		res.Sent = len(changes)
		out, err = p.post(ctx, "/internal/changes", changesRequest{Changes: changes})
	}
	if err != nil {
		// Keep the old ETag and knowledge: the next poll reads the list again and retries.
		return res, err
	}
	res.Applied, res.Tombstoned = out.Applied, out.Tombstoned
	p.etag, p.known = list.etag, current
	switch {
	case res.Snapshot && first:
		p.followUpAt = time.Now().Add(p.cfg.FollowUp)
	case res.Snapshot:
		p.followUpAt = time.Time{}
	}
	p.m.handedOver.Add(float64(res.Sent))
	if res.Snapshot {
		p.m.snapshots.Inc()
	}
	if res.Sent > 0 {
		p.log.Info("handed changes to api-attendee", "listed", res.Listed, "sent", res.Sent, "snapshot", res.Snapshot,
			"applied", res.Applied, "tombstoned", res.Tombstoned, "pages", list.pages)
	}
	return res, nil
}

// Reconcile reads the whole conference list, whatever the ETag, and hands it to api-attendee
// as a snapshot. Push mode runs it when Redis has lost events, and as an anti-entropy backstop.
func (p *Poller) Reconcile(ctx context.Context) error {
	list, err := p.fetch(ctx, "")
	if err != nil {
		return err
	}
	if len(list.items) == 0 {
		// Nothing to compare against: an empty snapshot is refused, and there is nothing the
		// source says exists.
		return nil
	}
	all := make([]changeJSON, len(list.items))
	for i, it := range list.items {
		all[i] = it.change()
	}
	takenAt := list.takenAt
	out, err := p.post(ctx, "/internal/snapshot", snapshotRequest{Complete: true, TakenAt: &takenAt, Changes: all})
	if err != nil {
		return err
	}
	p.m.snapshots.Inc()
	p.log.Info("reconcile snapshot applied", "listed", len(all), "applied", out.Applied, "tombstoned", out.Tombstoned)
	return nil
}

// listItem is one conference of api-conference's list.
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

// change is the conference as a change event. Its time is the conference's last update at the
// source, so that lag is measured the same way as in push mode.
func (it listItem) change() changeJSON {
	typ := changeevent.Updated
	if it.Version == 1 {
		typ = changeevent.Created
	}
	return changeJSON{
		EventID: fmt.Sprintf("pull-%d-v%d", it.ID, it.Version), Type: string(typ), ConferenceID: it.ID,
		Version: it.Version, OccurredAt: it.Updated,
		Data: &changeevent.Conference{
			ID: it.ID, Href: it.Href, Name: it.Name, Starts: it.Starts, Ends: it.Ends, MaxAttendees: it.MaxAttendees,
			Location: changeevent.Location{Name: it.Location.Name, City: it.Location.City, State: it.Location.State},
		},
	}
}

type listPage struct {
	Conferences []listItem `json:"conferences"`
	Next        *string    `json:"next"`
}

type list struct {
	notModified bool
	etag        string
	takenAt     time.Time
	items       []listItem
	pages       int
}

// maxPages stops a source whose next links go round in circles.
const maxPages = 100_000

// fetch reads the whole conference list. With etag set, an unchanged list answers 304 after
// one request. Any failed or malformed page fails the whole fetch: a partial list must never
// be taken for a complete one.
func (p *Poller) fetch(ctx context.Context, etag string) (list, error) {
	base, err := url.Parse(p.cfg.ConferenceURL)
	if err != nil {
		return list{}, fmt.Errorf("conference URL: %w", err)
	}
	next := "/api/conferences/?limit=" + strconv.Itoa(p.cfg.PageSize)
	var out list
	var lastAfter string
	for next != "" {
		if out.pages >= maxPages {
			return list{}, fmt.Errorf("conference list: more than %d pages", maxPages)
		}
		ref, err := url.Parse(next)
		if err != nil {
			return list{}, fmt.Errorf("conference list: next link %q: %w", next, err)
		}
		if after := ref.Query().Get("after"); out.pages > 0 && after == lastAfter {
			return list{}, fmt.Errorf("conference list: next link %q does not advance", next)
		} else {
			lastAfter = after
		}
		u := base.ResolveReference(ref).String()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return list{}, err
		}
		if out.pages == 0 && etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := p.cfg.Client.Do(req)
		if err != nil {
			return list{}, fmt.Errorf("GET %s: %w", u, err)
		}
		p.m.requests.Inc()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		p.m.bytes.Add(float64(len(body)))
		if err != nil {
			return list{}, fmt.Errorf("GET %s: read body: %w", u, err)
		}
		if out.pages == 0 {
			out.etag = resp.Header.Get("ETag")
			out.takenAt = time.Now().UTC()
			if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
				// The source's clock, whole seconds: earlier than the read, which is the safe side.
				out.takenAt = d.UTC()
			}
			if resp.StatusCode == http.StatusNotModified {
				return list{notModified: true, etag: etag}, nil
			}
		}
		if resp.StatusCode != http.StatusOK {
			return list{}, fmt.Errorf("GET %s: status %d: %.200s", u, resp.StatusCode, body)
		}
		var page listPage
		if err := json.Unmarshal(body, &page); err != nil {
			return list{}, fmt.Errorf("GET %s: malformed page: %w", u, err)
		}
		if page.Conferences == nil {
			return list{}, fmt.Errorf("GET %s: the page has no conferences list", u)
		}
		out.items = append(out.items, page.Conferences...)
		out.pages++
		next = ""
		if page.Next != nil {
			next = *page.Next
		}
	}
	return out, nil
}

// changeJSON is a change as api-attendee's internal endpoint takes it (see api-attendee/README.md).
type changeJSON struct {
	EventID      string                  `json:"event_id"`
	Type         string                  `json:"type"`
	ConferenceID int64                   `json:"conference_id"`
	Version      int64                   `json:"version"`
	OccurredAt   time.Time               `json:"occurred_at"`
	Data         *changeevent.Conference `json:"data"`
}

type changesRequest struct {
	Changes []changeJSON `json:"changes"`
}

type snapshotRequest struct {
	Complete bool         `json:"complete"`
	TakenAt  *time.Time   `json:"taken_at,omitempty"`
	Changes  []changeJSON `json:"changes"`
}

type applyResult struct {
	Changes    int `json:"changes"`
	Applied    int `json:"applied"`
	Tombstoned int `json:"tombstoned"`
}

func (p *Poller) post(ctx context.Context, path string, body any) (applyResult, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return applyResult{}, fmt.Errorf("encode %s: %w", path, err)
	}
	u, err := url.JoinPath(p.cfg.AttendeeURL, path)
	if err != nil {
		return applyResult{}, fmt.Errorf("attendee URL: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(data))
	if err != nil {
		return applyResult{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.cfg.Token)
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return applyResult{}, fmt.Errorf("POST %s: %w", u, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return applyResult{}, fmt.Errorf("POST %s: read answer: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return applyResult{}, fmt.Errorf("POST %s: status %d: %.300s", u, resp.StatusCode, answer)
	}
	var out applyResult
	if err := json.Unmarshal(answer, &out); err != nil {
		return applyResult{}, fmt.Errorf("POST %s: malformed answer: %w", u, err)
	}
	return out, nil
}
