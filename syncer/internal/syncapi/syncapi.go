// Package syncapi is the syncer's client of the two services' sync endpoints: api-conference's
// change feed and state listing (the source), and api-attendee's internal endpoints (the
// copy). The shapes come from changeevent; this package adds the HTTP, the limits on what it
// reads, and errors a caller can tell apart: a cursor too old (ErrGone) and a copy bound to
// another source (ErrSourceMismatch).
package syncapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"conferencego/syncer/changeevent"
)

// ErrGone says that the feed no longer holds the history after a cursor: list again.
var ErrGone = errors.New("the source's history no longer reaches the cursor")

// ErrSourceMismatch is wrapped by every error that says the copy belongs to another source.
var ErrSourceMismatch = errors.New("the copy is bound to another source")

// MismatchError says which source the copy is bound to and which one answered.
type MismatchError struct {
	Bound, Seen string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("api-attendee's copy is bound to source %s, but api-conference is now source %s", e.Bound, e.Seen)
}

// Unwrap lets errors.Is find ErrSourceMismatch.
func (e *MismatchError) Unwrap() error { return ErrSourceMismatch }

// maxBody bounds what one response may hold: a page of 1000 conferences with the longest
// names is well under it.
const maxBody = 64 << 20

// Observer is told the size of every response body the source sent, for the metrics of
// what syncing costs the source.
type Observer func(bytes int)

// Source reads api-conference.
type Source struct {
	Base    string // base URL, e.g. http://localhost:8000
	Client  *http.Client
	Observe Observer
}

// Feed reads one page of changes after cursor ("" from the beginning).
func (s *Source) Feed(ctx context.Context, cursor string, limit int) (changeevent.FeedPage, error) {
	q := url.Values{changeevent.ParamLimit: {strconv.Itoa(limit)}}
	if cursor != "" {
		q.Set(changeevent.ParamAfter, cursor)
	}
	var page changeevent.FeedPage
	if err := s.get(ctx, changeevent.PathFeed+"?"+q.Encode(), &page); err != nil {
		return changeevent.FeedPage{}, err
	}
	if err := changeevent.CheckSource(page.Source); err != nil {
		return changeevent.FeedPage{}, fmt.Errorf("feed page: %w", err)
	}
	if page.Next == "" {
		return changeevent.FeedPage{}, errors.New("feed page: no next cursor")
	}
	return page, nil
}

// State reads one page of the state listing: conferences with ids above after.
func (s *Source) State(ctx context.Context, after int64, limit int) (changeevent.StatePage, error) {
	q := url.Values{changeevent.ParamAfter: {strconv.FormatInt(after, 10)}, changeevent.ParamLimit: {strconv.Itoa(limit)}}
	return s.state(ctx, q)
}

// Lookup asks the source for exactly these conferences (at most changeevent.MaxPage); those
// it does not know are absent from the answer.
func (s *Source) Lookup(ctx context.Context, ids []int64) (changeevent.StatePage, error) {
	if len(ids) > changeevent.MaxPage {
		return changeevent.StatePage{}, fmt.Errorf("lookup of %d ids: at most %d", len(ids), changeevent.MaxPage)
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return s.state(ctx, url.Values{changeevent.ParamIDs: {strings.Join(parts, ",")}})
}

// Facts indexes a lookup's answer by id, and checks that every id asked about is either known
// or listed as unknown.
func Facts(asked []int64, page changeevent.StatePage) (map[int64]changeevent.Change, error) {
	facts := make(map[int64]changeevent.Change, len(page.Conferences))
	for _, c := range page.Conferences {
		facts[c.ConferenceID] = c
	}
	unknown := make(map[int64]bool, len(page.Unknown))
	for _, id := range page.Unknown {
		unknown[id] = true
	}
	for _, id := range asked {
		if _, ok := facts[id]; !ok && !unknown[id] {
			return nil, fmt.Errorf("the answer says nothing of conference %d", id)
		}
	}
	return facts, nil
}

func (s *Source) state(ctx context.Context, q url.Values) (changeevent.StatePage, error) {
	var page changeevent.StatePage
	if err := s.get(ctx, changeevent.PathState+"?"+q.Encode(), &page); err != nil {
		return changeevent.StatePage{}, err
	}
	if err := changeevent.CheckSource(page.Source); err != nil {
		return changeevent.StatePage{}, fmt.Errorf("state page: %w", err)
	}
	if page.Conferences == nil {
		return changeevent.StatePage{}, errors.New("state page: no conferences list")
	}
	return page, nil
}

// GetList reads one page of the public conference list (the seed's way of polling) into dst.
// With etag set it is sent as If-None-Match, and an unchanged list reports notModified.
func (s *Source) GetList(ctx context.Context, path, etag string, dst any) (newTag string, notModified bool, err error) {
	var header http.Header
	if etag != "" {
		header = http.Header{"If-None-Match": {etag}}
	}
	resp, body, err := do(ctx, s.Client, http.MethodGet, s.Base, path, nil, header)
	if err != nil {
		return "", false, err
	}
	if s.Observe != nil {
		s.Observe(len(body))
	}
	switch resp.StatusCode {
	case http.StatusNotModified:
		return etag, true, nil
	case http.StatusOK:
	default:
		return "", false, statusError(http.MethodGet, path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return "", false, fmt.Errorf("GET %s: malformed page: %w", path, err)
	}
	return resp.Header.Get("ETag"), false, nil
}

// get reads path (with its query) into dst as JSON.
func (s *Source) get(ctx context.Context, path string, dst any) error {
	resp, body, err := do(ctx, s.Client, http.MethodGet, s.Base, path, nil, nil)
	if err != nil {
		return err
	}
	if s.Observe != nil {
		s.Observe(len(body))
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusGone:
		return fmt.Errorf("GET %s: %w", path, ErrGone)
	default:
		return statusError(http.MethodGet, path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return fmt.Errorf("GET %s: malformed answer: %w", path, err)
	}
	return nil
}

// Attendee talks to api-attendee's internal endpoints.
type Attendee struct {
	Base   string // base URL, e.g. http://localhost:8001
	Token  string // SYNC_TOKEN
	Client *http.Client
}

// Handover applies changes from source to the copy.
func (c *Attendee) Handover(ctx context.Context, source string, changes []changeevent.Change) (changeevent.HandoverResult, error) {
	var out changeevent.HandoverResult
	err := c.call(ctx, http.MethodPost, changeevent.PathHandover, changeevent.Handover{Source: source, Changes: changes}, &out)
	return out, err
}

// Repair makes the copy equal to the source for each repair whose version still holds.
func (c *Attendee) Repair(ctx context.Context, source string, repairs []changeevent.Repair) (changeevent.HandoverResult, error) {
	var out changeevent.HandoverResult
	err := c.call(ctx, http.MethodPost, changeevent.PathRepairs, changeevent.RepairRequest{Source: source, Repairs: repairs}, &out)
	return out, err
}

// ConferenceVOs reads one page of the copy: rows with ids above after, tombstones included.
func (c *Attendee) ConferenceVOs(ctx context.Context, after int64, limit int) (changeevent.ConferenceVOPage, error) {
	q := url.Values{changeevent.ParamAfter: {strconv.FormatInt(after, 10)}, changeevent.ParamLimit: {strconv.Itoa(limit)}}
	var page changeevent.ConferenceVOPage
	if err := c.call(ctx, http.MethodGet, changeevent.PathConferenceVOs+"?"+q.Encode(), nil, &page); err != nil {
		return changeevent.ConferenceVOPage{}, err
	}
	if page.Conferences == nil {
		return changeevent.ConferenceVOPage{}, errors.New("copy page: no conferences list")
	}
	return page, nil
}

// Binding returns the source the copy is bound to ("" for none).
func (c *Attendee) Binding(ctx context.Context) (changeevent.SourceBinding, error) {
	var out changeevent.SourceBinding
	err := c.call(ctx, http.MethodGet, changeevent.PathSource, nil, &out)
	return out, err
}

func (c *Attendee) call(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
	}
	header := http.Header{"Authorization": {"Bearer " + c.Token}}
	resp, answer, err := do(ctx, c.Client, method, c.Base, path, body, header)
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusConflict:
		// The only conflict these endpoints answer is a copy bound to another source.
		return fmt.Errorf("%w: %w", ErrSourceMismatch, statusError(method, path, resp.StatusCode, answer))
	default:
		return statusError(method, path, resp.StatusCode, answer)
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("%s %s: malformed answer: %w", method, path, err)
	}
	return nil
}

func do(ctx context.Context, client *http.Client, method, base, path string, body []byte, header http.Header) (*http.Response, []byte, error) {
	u := strings.TrimRight(base, "/") + path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if len(answer) > maxBody {
		return nil, nil, fmt.Errorf("%s %s: answer larger than %d bytes", method, path, maxBody)
	}
	return resp, answer, nil
}

// statusError keeps the problem's detail when there is one: it is what a person needs.
func statusError(method, path string, status int, body []byte) error {
	var problem struct {
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &problem) == nil && problem.Detail != "" {
		return fmt.Errorf("%s %s: status %d: %s", method, path, status, problem.Detail)
	}
	return fmt.Errorf("%s %s: status %d: %.200s", method, path, status, body)
}
