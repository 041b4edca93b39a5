package reconcile

import (
	"context"
	"log/slog"
	"time"
)

// ConferenceVOs is api-attendee's ConferenceVO table as the syncer sees it. Both modes make it equal to
// the source through MatchSource: pull at start, after a 410 and periodically; push at start,
// whenever Redis lost entries, and periodically. One type for both keeps the guard and what is
// logged the same whichever mode heals.
type ConferenceVOs struct {
	log   *slog.Logger
	rec   *Reconciler
	guard *Guard
}

// NewConferenceVOs returns the ConferenceVO table that rec reconciles, with guard recording a source mismatch.
func NewConferenceVOs(log *slog.Logger, rec *Reconciler, guard *Guard) *ConferenceVOs {
	return &ConferenceVOs{log: log, rec: rec, guard: guard}
}

// MatchSource makes ConferenceVO equal to the source (one Reconciler run), says so in one log line,
// and lifts the guard once the copy's own source answers again. An error is the run's; a
// mismatch among them is for NoteMismatch.
func (c *ConferenceVOs) MatchSource(ctx context.Context) (Result, error) {
	res, err := c.rec.Run(ctx)
	if err != nil {
		return res, err
	}
	if c.guard.Clear() {
		c.log.Warn("api-conference is the copy's source again; handing over resumes", "source", res.Source)
	}
	c.log.Info("reconciled api-attendee with the source", "source", res.Source, "listed", res.Listed, "conference_vos", res.ConferenceVOs,
		"handed_over", res.HandedOver, "applied", res.Applied, "looked_up", res.LookedUp, "repaired", res.Repaired,
		"took", res.Took.Round(time.Millisecond).String())
	return res, nil
}

// NoteMismatch records err in the guard if it says that api-conference is another database
// than the copy's source, logs that once rather than at every retry, and reports whether it
// was one. Any other error is the caller's to report.
func (c *ConferenceVOs) NoteMismatch(err error) bool {
	mismatch, fresh := c.guard.Note(err)
	if fresh {
		c.log.Error("api-conference is another database than the one api-attendee's copy was made from; "+
			"handing nothing over and keeping the copy as it is. If the new source is right, accept it with "+
			"DELETE /internal/source on api-attendee (see the README)", "err", err)
	}
	return mismatch
}
