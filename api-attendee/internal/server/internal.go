package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/api-attendee/internal/postgres"
	"conferencego/httpedge"
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

func checkSource(source string) error {
	if err := changeevent.CheckSource(source); err != nil {
		return attendee.Invalid("source", "must name the source the changes come from (its identity, 1 to 64 printable characters)")
	}
	return nil
}

func respond(c *fiber.Ctx, res attendee.ApplyResult, lag prometheus.Histogram) error {
	for _, l := range res.Lags {
		lag.Observe(max(l, 0).Seconds()) // clocks of two hosts may disagree a little
	}
	return c.JSON(changeevent.HandoverResult{Changes: res.Changes, Applied: res.Applied})
}

// handleListConferenceVOsWithTombstones lists rows of conference_vos, tombstones included, by id, so the syncer
// and the comparison can check the copy against the source: versions, tombstones and lag.
// With limit it pages; without, it lists every row.
func handleListConferenceVOsWithTombstones(store *postgres.Store) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var v attendee.ValidationError
		after, limit := int64(0), 0
		if s := c.Query(changeevent.ParamAfter); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 || strings.HasPrefix(s, "+") {
				v.Add(changeevent.ParamAfter, "must be a conference id (a whole number, 0 or more)")
			}
			after = n
		}
		if s := c.Query(changeevent.ParamLimit); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > changeevent.MaxPage || strings.HasPrefix(s, "+") {
				v.Add(changeevent.ParamLimit, fmt.Sprintf("must be a whole number from 1 to %d", changeevent.MaxPage))
			}
			limit = n
		}
		if err := v.Err(); err != nil {
			return err
		}
		source, _, err := store.Binding(c.UserContext())
		if err != nil {
			return err
		}
		confs, err := store.ListConferenceVOsWithTombstones(c.UserContext(), after, limit)
		if err != nil {
			return err
		}
		out := changeevent.ConferenceVOPage{Source: source, Conferences: make([]changeevent.ConferenceVO, len(confs))}
		for i, cf := range confs {
			cp := changeevent.ConferenceVO{
				ID: cf.ID, ImportHref: cf.ImportHref, Name: cf.Name, MaxAttendees: cf.MaxAttendees,
				Version: cf.Version, Deleted: cf.Deleted, OccurredAt: cf.OccurredAt, AppliedAt: cf.AppliedAt,
			}
			if !cf.Starts.IsZero() {
				cp.Starts, cp.Ends = &cf.Starts, &cf.Ends
			}
			out.Conferences[i] = cp
		}
		if limit > 0 && len(confs) == limit {
			next := fmt.Sprintf("%s?%s=%d&%s=%d", changeevent.PathConferenceVOs, changeevent.ParamAfter, confs[len(confs)-1].ID, changeevent.ParamLimit, limit)
			out.Next = &next
		}
		return c.JSON(out)
	}
}

// handleApplyChanges applies a hand-over from one source, all or nothing.
func handleApplyChanges(store *postgres.Store, lag prometheus.Histogram) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req changeevent.Handover
		if err := httpedge.DecodeStrict(c, &req); err != nil {
			return err
		}
		if err := checkSource(req.Source); err != nil {
			return err
		}
		// The hand-over's trust boundary: each change is checked here, once (see attendee.Change).
		batch, err := attendee.BatchFrom(req.Changes)
		if err != nil {
			return err
		}
		res, err := store.ApplyHandover(c.UserContext(), req.Source, batch)
		if err != nil {
			return err
		}
		return respond(c, res, lag)
	}
}

// handleRepairs lets the source win over a copy that is ahead of it, all or nothing.
func handleRepairs(store *postgres.Store) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req changeevent.RepairRequest
		if err := httpedge.DecodeStrict(c, &req); err != nil {
			return err
		}
		if err := checkSource(req.Source); err != nil {
			return err
		}
		var v attendee.ValidationError
		repairs := make([]attendee.Repair, len(req.Repairs))
		for i, r := range req.Repairs {
			repairs[i] = attendee.Repair{ConferenceID: r.ConferenceID, Replaces: r.Replaces}
			if r.Change != nil {
				ch, err := attendee.ChangeFrom(*r.Change)
				if err != nil {
					v.Add(fmt.Sprintf("repairs[%d]", i), err.Error())
					continue
				}
				repairs[i].Change = &ch
			}
		}
		if err := v.Err(); err != nil {
			return err
		}
		res, err := store.Repair(c.UserContext(), req.Source, repairs)
		if err != nil {
			return err
		}
		return c.JSON(changeevent.HandoverResult{Changes: res.Changes, Applied: res.Applied})
	}
}

// handleGetSource says which source the copy is made from.
func handleGetSource(store *postgres.Store) fiber.Handler {
	return func(c *fiber.Ctx) error {
		source, at, err := store.Binding(c.UserContext())
		if err != nil {
			return err
		}
		out := changeevent.SourceBinding{Source: source}
		if source != "" {
			out.BoundAt = &at
		}
		return c.JSON(out)
	}
}

// handleForgetSource is the operator's way to accept a new source: the next hand-over binds
// the copy to whatever source it comes from.
func handleForgetSource(store *postgres.Store, log *slog.Logger) fiber.Handler {
	return func(c *fiber.Ctx) error {
		old, err := store.Unbind(c.UserContext())
		if err != nil {
			return err
		}
		if old != "" {
			log.Warn("the copy is no longer bound to its source; the next hand-over binds it to the source it comes from", "old_source", old)
		}
		return c.JSON(changeevent.SourceBinding{})
	}
}
