package server

import (
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/api-attendee/internal/postgres"
	"conferencego/httpedge"
)

// statusMetrics are the figures GET /status reports: what the consumer applied and how late
// (push), and how late the syncer's hand-overs arrived (pull).
var statusMetrics = []string{
	"attendee_consumer_entries_applied_total",
	"attendee_consumer_entries_dead_lettered_total",
	"attendee_consumer_retries_total",
	"attendee_consumer_lag_seconds",
	"attendee_internal_lag_seconds",
}

// handleStatus answers GET /status from the service's own registry.
func handleStatus(mode string, reg prometheus.Gatherer) fiber.Handler {
	return adaptor.HTTPHandler(httpedge.Status(httpedge.StatusConfig{
		Service: "api-attendee", Mode: mode, Gatherer: reg, Metrics: statusMetrics,
	}))
}

const (
	defaultCopyLimit = 50
	maxCopyLimit     = 500
)

// copyItem is one row of the copy as a page watching it shows it: the lag is
// applied_at - occurred_at, computed here because a browser's Date drops the microseconds.
type copyItem struct {
	ID           int64     `json:"id"`
	Name         string    `json:"name"`
	MaxAttendees int       `json:"max_attendees"`
	Attendees    int       `json:"attendees"`
	Version      int64     `json:"version"`
	Deleted      bool      `json:"deleted"`
	OccurredAt   time.Time `json:"occurred_at"`
	AppliedAt    time.Time `json:"applied_at"`
	LagSeconds   float64   `json:"lag_seconds"`
}

// handleListNewestConferenceVOs lists the newest rows of the copy, tombstones included, so that a page can
// show each conference's version and how late it arrived. It is read-only and holds nothing
// the public list does not, besides tombstones and the two times.
func handleListNewestConferenceVOs(store *postgres.Store) fiber.Handler {
	return func(c *fiber.Ctx) error {
		limit := defaultCopyLimit
		if s := c.Query("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > maxCopyLimit || s[0] == '+' {
				return attendee.Invalid("limit", fmt.Sprintf("must be a whole number from 1 to %d", maxCopyLimit))
			}
			limit = n
		}
		rows, err := store.NewestConferenceVOs(c.UserContext(), limit)
		if err != nil {
			return err
		}
		out := make([]copyItem, len(rows))
		for i, r := range rows {
			out[i] = copyItem{
				ID: r.ID, Name: r.Name, MaxAttendees: r.MaxAttendees, Attendees: r.Attendees,
				Version: r.Version, Deleted: r.Deleted, OccurredAt: r.OccurredAt, AppliedAt: r.AppliedAt,
				LagSeconds: r.AppliedAt.Sub(r.OccurredAt).Seconds(),
			}
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(fiber.Map{"conference_vos": out})
	}
}
