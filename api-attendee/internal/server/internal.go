package server

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/api-attendee/internal/postgres"
	"conferencego/syncer/changeevent"
)

// requireToken lets a request through only with "Authorization: Bearer <token>". With no
// token configured the endpoint is off and every call is refused the same way.
func requireToken(token string) fiber.Handler {
	// Comparing digests takes the same time whatever the length of the guess.
	want := sha256.Sum256([]byte(token))
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="api-attendee internal"`)
		if token == "" {
			return fiber.NewError(fiber.StatusUnauthorized, "the internal endpoint is off: SYNC_TOKEN is not set")
		}
		scheme, got, ok := strings.Cut(c.Get(fiber.HeaderAuthorization), " ")
		gotSum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(gotSum[:], want[:]) != 1 {
			return fiber.NewError(fiber.StatusUnauthorized, "send Authorization: Bearer <SYNC_TOKEN>")
		}
		return c.Next()
	}
}

// changeJSON is a change as the internal endpoint takes it: the fields of a stream entry
// (changeevent), with numbers as JSON numbers and data as an object, or null for a delete.
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
	// Complete must be true: a snapshot tombstones what it does not list, so it must not be
	// sent by a client that could not read the whole list.
	Complete bool         `json:"complete"`
	TakenAt  *time.Time   `json:"taken_at"`
	Changes  []changeJSON `json:"changes"`
}

type applyResponse struct {
	Changes    int `json:"changes"`
	Applied    int `json:"applied"`
	Tombstoned int `json:"tombstoned"`
}

// decodeStrict reads the body as exactly one JSON object of dst's shape, no unknown fields.
func decodeStrict(c *fiber.Ctx, dst any) error {
	if err := requireJSON(c); err != nil {
		return err
	}
	body := c.Body()
	if !utf8.Valid(body) {
		return fmt.Errorf("%w: the request body is not valid UTF-8", attendee.ErrInvalid)
	}
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		return fmt.Errorf("%w: the request body must be a JSON object", attendee.ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("%w: the request body does not match the documented shape: %s", attendee.ErrInvalid, jsonProblem(err))
	}
	if afterValue(dec, body) {
		return fmt.Errorf("%w: the request body has content after the JSON object", attendee.ErrInvalid)
	}
	if field, ok := nulField(body); ok {
		return attendee.Invalid(field, "must not contain NUL characters")
	}
	return nil
}

// toEvents converts and checks each change, naming the bad ones by index.
func toEvents(in []changeJSON) ([]changeevent.Event, error) {
	var v attendee.ValidationError
	out := make([]changeevent.Event, len(in))
	for i, c := range in {
		e := changeevent.Event{
			ID: c.EventID, Type: changeevent.Type(c.Type), ConferenceID: c.ConferenceID, Version: c.Version,
			OccurredAt: c.OccurredAt.UTC(), Data: c.Data,
		}
		if e.Data != nil {
			e.Data.Starts, e.Data.Ends = e.Data.Starts.UTC(), e.Data.Ends.UTC()
		}
		if err := attendee.CheckChange(e); err != nil {
			v.Add(fmt.Sprintf("changes[%d]", i), err.Error())
		}
		out[i] = e
	}
	return out, v.Err()
}

func respond(c *fiber.Ctx, res attendee.ApplyResult, lag prometheus.Histogram) error {
	for _, l := range res.Lags {
		lag.Observe(max(l, 0).Seconds()) // clocks of two hosts may disagree a little
	}
	return c.JSON(applyResponse{Changes: res.Changes, Applied: res.Applied, Tombstoned: res.Tombstoned})
}

// conferenceCopy is a row of conference_vos as the internal endpoint shows it, tombstones
// included. Starts and ends are null on a tombstone of a conference never seen alive.
type conferenceCopy struct {
	ID           int64      `json:"id"`
	ImportHref   string     `json:"import_href"`
	Name         string     `json:"name"`
	Starts       *time.Time `json:"starts"`
	Ends         *time.Time `json:"ends"`
	MaxAttendees int        `json:"max_attendees"`
	Version      int64      `json:"version"`
	Deleted      bool       `json:"deleted"`
	OccurredAt   time.Time  `json:"occurred_at"`
	AppliedAt    time.Time  `json:"applied_at"`
}

// handleListCopies lists every row of conference_vos, so the syncer and the comparison can
// check the copy against the source: versions, tombstones and propagation lag.
func handleListCopies(store *postgres.Store) fiber.Handler {
	return func(c *fiber.Ctx) error {
		confs, err := store.ListConferenceCopies(c.UserContext())
		if err != nil {
			return err
		}
		out := struct {
			Conferences []conferenceCopy `json:"conferences"`
		}{Conferences: make([]conferenceCopy, len(confs))}
		for i, cf := range confs {
			cp := conferenceCopy{
				ID: cf.ID, ImportHref: cf.ImportHref, Name: cf.Name, MaxAttendees: cf.MaxAttendees,
				Version: cf.Version, Deleted: cf.Deleted, OccurredAt: cf.OccurredAt, AppliedAt: cf.AppliedAt,
			}
			if !cf.Starts.IsZero() {
				cp.Starts, cp.Ends = &cf.Starts, &cf.Ends
			}
			out.Conferences[i] = cp
		}
		return c.JSON(out)
	}
}

// handleApplyChanges applies a batch of changes, all or nothing.
func handleApplyChanges(store *postgres.Store, lag prometheus.Histogram) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req changesRequest
		if err := decodeStrict(c, &req); err != nil {
			return err
		}
		events, err := toEvents(req.Changes)
		if err != nil {
			return err
		}
		res, err := store.ApplyChanges(c.UserContext(), attendee.Batch{Changes: events})
		if err != nil {
			return err
		}
		return respond(c, res, lag)
	}
}

// handleApplySnapshot applies the complete list of live conferences and tombstones every
// live conference it does not list. An empty or partial snapshot is refused.
func handleApplySnapshot(store *postgres.Store, lag prometheus.Histogram) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req snapshotRequest
		if err := decodeStrict(c, &req); err != nil {
			return err
		}
		if !req.Complete {
			return attendee.Invalid("complete", `must be true: a snapshot tombstones what it does not list; send partial lists to /internal/changes`)
		}
		events, err := toEvents(req.Changes)
		if err != nil {
			return err
		}
		b := attendee.Batch{Changes: events, Complete: true}
		if req.TakenAt != nil {
			if y := req.TakenAt.UTC().Year(); y < 1 || y > 9999 {
				return attendee.Invalid("taken_at", "must be an RFC 3339 time between the years 1 and 9999")
			}
			b.TakenAt = req.TakenAt.UTC()
		}
		res, err := store.ApplyChanges(c.UserContext(), b)
		if err != nil {
			return err
		}
		return respond(c, res, lag)
	}
}
