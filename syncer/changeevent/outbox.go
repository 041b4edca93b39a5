package changeevent

import "time"

// OutboxRow is one row of api-conference's outbox table (migration 0001 of api-conference):
// one committed change, not yet published. api-conference writes it in the transaction of the
// change; the relay claims it with ClaimOutboxSQL.
type OutboxRow struct {
	ID           int64
	EventID      string
	ConferenceID int64
	Type         string
	Version      int64
	// Payload is the JSON of Conference; empty for a delete.
	Payload    []byte
	OccurredAt time.Time
}

// ClaimOutboxSQL claims and removes up to $1 outbox rows in one statement, returning them in
// the column order of OutboxRow. Rows locked by another claimer are skipped, not waited for, so
// relays share the work; the rows are gone only if the claiming transaction commits. It calls
// api-conference's claim_outbox (migration 0006), which runs as the table's owner: the relay's
// role may claim rows but cannot update, insert or renumber them.
const ClaimOutboxSQL = `SELECT id, event_id, conference_id, type, version, payload, occurred_at FROM claim_outbox($1)`

// Entry returns the row as a validated Event and as the stream entry to XADD, whose data is
// the payload's bytes as api-conference wrote them (the relay does not decode and encode them
// again). An error wraps ErrMalformed.
//
// The outbox is where push mode's events cross from api-conference into the syncer, so this
// is where the relay validates them, once: a row the contract refuses is dead-lettered here,
// with its outbox id, instead of poisoning the stream. Entry is therefore the relay's only way
// to an entry, and the entry needs no second check on the way out.
func (o OutboxRow) Entry() (Event, []string, error) {
	e, err := o.Event()
	if err != nil {
		return Event{}, nil, err
	}
	return e, e.fields(o.Payload), nil
}

// Event returns the row as a validated Event; an error wraps ErrMalformed.
func (o OutboxRow) Event() (Event, error) {
	typ, err := ParseType(o.Type)
	if err != nil {
		return Event{}, err
	}
	e := Event{ID: o.EventID, Type: typ, ConferenceID: o.ConferenceID, Version: o.Version, OccurredAt: o.OccurredAt.UTC()}
	if len(o.Payload) > 0 {
		if e.Data, err = ParseData(o.Payload); err != nil {
			return Event{}, err
		}
	}
	return e, e.Validate()
}

// Fields of a dead-letter entry, added to (or, for an outbox row, standing in for) the fields of
// the entry that could not be applied.
const (
	FieldDLQReason     = "dlq_reason"
	FieldDLQSource     = "dlq_source"
	FieldDLQSourceID   = "dlq_source_id"
	FieldDLQDeliveries = "dlq_deliveries"
	FieldDLQGroup      = "dlq_group"
	FieldDLQConsumer   = "dlq_consumer"
	FieldDLQOutboxID   = "outbox_id"
)

// RecordPublishedSQL records that the relay published stream ($1) up to entry ID $2-$3, in the
// transaction that deletes the rows it published (api-conference's migration 0007). A position
// only moves forward.
const RecordPublishedSQL = `SELECT record_published($1, $2, $3)`

// PublishedPositionSQL returns the newest entry ID recorded for stream $1 as ms, seq: no row
// when nothing was ever published to it.
const PublishedPositionSQL = `SELECT ms, seq FROM published_position($1)`
