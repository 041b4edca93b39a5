package changeevent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// The logical-decoding transport (api-conference's OUTBOX_TRANSPORT=logical, the syncer's
// SYNC_OUTBOX_TRANSPORT=logical): instead of an outbox row, the writing transaction emits
// pg_logical_emit_message(true, MessagePrefix, content), which is in the write-ahead log only if
// the transaction commits and is decoded in commit order from a replication slot. The content
// is the outbox row's columns as one JSON object:
//
//	{"event_id": "…", "type": "conference.updated", "conference_id": 7, "version": 3,
//	 "occurred_at": "2026-12-03T16:43:24.123456+00:00", "data": {…} or null}
//
// data is the payload exactly as the outbox row holds it (jsonb's text), so both transports
// publish the same bytes.
const (
	// MessagePrefix is the prefix of api-conference's messages; others are not read.
	MessagePrefix = "conferencego.change"
	// DefaultSlot is the replication slot (and the publication pgoutput is started with) both
	// sides default to; OUTBOX_SLOT and SYNC_SLOT name another.
	DefaultSlot = "conferencego_outbox"
)

// slotName is what a replication slot's name may be (Postgres allows lower-case letters, digits
// and underscores, up to 63); the publication of the same name is held to it too, so that
// neither ever needs quoting.
var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// ValidSlot reports whether name can name a slot and its publication (OUTBOX_SLOT, SYNC_SLOT).
func ValidSlot(name string) bool { return slotName.MatchString(name) }

// EnsurePublicationSQL makes publication name, for no table, unless it exists (CREATE
// PUBLICATION has no IF NOT EXISTS). pgoutput needs one to start, and looks it up as of each
// change it decodes, so it must exist before the slot: a change older than the publication
// fails the stream. name must be ValidSlot.
func EnsurePublicationSQL(name string) string {
	return `DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = '` + name + `') THEN
    CREATE PUBLICATION ` + name + `;
  END IF;
END $$`
}

// message is the content of one message.
type message struct {
	EventID      string          `json:"event_id"`
	Type         string          `json:"type"`
	ConferenceID int64           `json:"conference_id"`
	Version      int64           `json:"version"`
	OccurredAt   time.Time       `json:"occurred_at"`
	Data         json.RawMessage `json:"data"`
}

// MessageRow reads the content of a message as the outbox row it stands for, with seq (its
// position in the log) as the row's id. The row still goes through Entry, the relay's one check
// of the contract; an error here (content that is not the object above) wraps ErrMalformed.
func MessageRow(content []byte, seq int64) (OutboxRow, error) {
	var m message
	dec := json.NewDecoder(bytes.NewReader(content))
	if err := dec.Decode(&m); err != nil {
		return OutboxRow{ID: seq}, fmt.Errorf("%w: logical message: %v", ErrMalformed, err)
	}
	if dec.More() {
		return OutboxRow{ID: seq}, fmt.Errorf("%w: logical message: trailing content after the JSON object", ErrMalformed)
	}
	o := OutboxRow{ID: seq, EventID: m.EventID, ConferenceID: m.ConferenceID, Type: m.Type, Version: m.Version, OccurredAt: m.OccurredAt}
	if d := bytes.TrimSpace(m.Data); len(d) > 0 && !bytes.Equal(d, []byte("null")) {
		o.Payload = d
	}
	return o, nil
}
