package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"conferencego/api-conference/internal/conference"
	"conferencego/syncer/changeevent"
)

const (
	changeCreated = changeevent.Created
	changeUpdated = changeevent.Updated
)

// markerSlots is the number of rows in change_marker (see migration 0001).
const markerSlots = 16

// recordChanges writes one event for each conference in ids, as it stands now inside tx (an
// outbox row or, with emitLogical, a logical-decoding message), bumps the change marker and,
// with NotifyCommit, notifies the relay. Called in the transaction that made the
// change, so the change and its event commit or vanish together. It returns the conferences
// it read, so callers need not read them again.
func recordChanges(ctx context.Context, tx bun.Tx, ids []int64, typ changeevent.Type, emit emitter) ([]conference.Conference, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var rows []conferenceRow
	if err := tx.NewSelect().Model(&rows).Relation("Location").Where("c.id IN (?)", bun.List(ids)).Order("c.id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("read changed conferences: %w", translate(err))
	}
	confs := make([]conference.Conference, len(rows))
	out := make([]outboxRow, len(rows))
	for i, r := range rows {
		confs[i] = r.domain()
		payload, err := changeevent.MarshalData(confs[i].Payload())
		if err != nil {
			return nil, err
		}
		out[i] = outboxRow{ConferenceID: r.ID, Type: string(typ), Version: r.Version, Payload: payload}
	}
	return confs, insertOutbox(ctx, tx, out, emit)
}

// insertOutbox writes rows to the outbox (or emits them, with emitLogical), bumps the change
// marker and, with NotifyCommit, notifies the relay, in one statement: each round trip here is spent inside the writer's transaction,
// and on the way of every change to its consumers.
func insertOutbox(ctx context.Context, tx bun.Tx, rows []outboxRow, emit emitter) error {
	var (
		values strings.Builder
		args   []any
		slots  []int64
	)
	for i, r := range rows {
		if i > 0 {
			values.WriteString(", ")
		}
		values.WriteString("(?, ?, ?, ?::jsonb)")
		var data any // NULL for deletes
		if r.Payload != nil {
			data = string(r.Payload)
		}
		args = append(args, r.ConferenceID, r.Type, r.Version, data)
		slots = append(slots, r.ConferenceID%markerSlots)
	}
	// Marker slots are bumped in ascending order, so two transactions that touch the same
	// slots take their row locks in the same order and cannot deadlock. pg_notify is
	// delivered at commit, and only if the transaction commits.
	notified := "false"
	if emit == emitter(NotifyCommit) {
		notified = "pg_notify(?, '') IS NULL"
		args = append(args, pgdialect.Array(slots), changeevent.NotifyChannel)
	} else {
		args = append(args, pgdialect.Array(slots))
	}
	written := `INSERT INTO outbox (conference_id, type, version, payload) VALUES ` + values.String() + ` RETURNING 1`
	if emit == emitLogical {
		// The same columns as a message each (writes.go's eventLogical); the count reads them.
		written = eventLogical + `VALUES ` + values.String() + eventLogicalEnd
	}
	query := `WITH inserted AS (
    ` + written + `
), bumped AS (
    UPDATE change_marker SET n = n + m.k
    FROM (SELECT s, count(*) AS k FROM unnest(?::smallint[]) AS s GROUP BY s ORDER BY s) AS m
    WHERE slot = m.s RETURNING 1
)
SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM bumped), ` + notified
	var inserted, bumped int
	var void bool
	if err := tx.NewRaw(query, args...).Scan(ctx, &inserted, &bumped, &void); err != nil {
		return fmt.Errorf("write outbox: %w", translate(err))
	}
	if inserted != len(rows) {
		return fmt.Errorf("write outbox: %d rows written of %d", inserted, len(rows))
	}
	return nil
}

// OutboxEvent is an outbox row as the contract sees it.
type OutboxEvent struct {
	Seq   int64 // the row's id, for ordering and removal
	Event changeevent.Event
}

// ReadOutbox returns up to limit outbox rows in id order, decoded into events. The relay
// claims rows with its own locking query; this is for inspection and tests.
func (s *Store) ReadOutbox(ctx context.Context, limit int) ([]OutboxEvent, error) {
	var rows []outboxRow
	if err := s.db.NewSelect().Model(&rows).Order("id").Limit(int64(limit)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("read outbox: %w", translate(err))
	}
	out := make([]OutboxEvent, 0, len(rows))
	for _, r := range rows {
		e, err := r.event()
		if err != nil {
			return nil, fmt.Errorf("outbox row %d: %w", r.ID, err)
		}
		out = append(out, OutboxEvent{Seq: r.ID, Event: e})
	}
	return out, nil
}

func (r outboxRow) event() (changeevent.Event, error) {
	typ, err := changeevent.ParseType(r.Type)
	if err != nil {
		return changeevent.Event{}, err
	}
	e := changeevent.Event{
		ID: r.EventID, Type: typ, ConferenceID: r.ConferenceID, Version: r.Version,
		OccurredAt: r.OccurredAt.UTC().Truncate(time.Microsecond),
	}
	if len(r.Payload) > 0 {
		if e.Data, err = changeevent.ParseData(r.Payload); err != nil {
			return changeevent.Event{}, err
		}
	}
	return e, e.Validate()
}
