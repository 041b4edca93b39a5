package changeevent

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMessageRow(t *testing.T) {
	t.Parallel()
	content := `{"data": {"id": 7, "href": "/api/conferences/7/", "name": "Go", "starts": "2027-03-01T09:00:00Z", "ends": "2027-03-02T09:00:00Z",
		"max_attendees": 10, "location": {"name": "Hall", "city": "Austin", "state": "TX"}},
		"type": "conference.updated", "version": 3, "event_id": "e1", "occurred_at": "2026-12-03T16:43:24.123456+00:00", "conference_id": 7, "later": true}`
	o, err := MessageRow([]byte(content), 42)
	if err != nil {
		t.Fatal(err)
	}
	if o.ID != 42 || o.EventID != "e1" || o.Type != "conference.updated" || o.ConferenceID != 7 || o.Version != 3 ||
		!o.OccurredAt.Equal(time.Date(2026, 12, 3, 16, 43, 24, 123456000, time.UTC)) {
		t.Errorf("row %+v", o)
	}
	if _, fields, err := o.Entry(); err != nil || len(fields) != 12 {
		t.Errorf("Entry of a message's row: %v, %v", fields, err)
	}
	del, err := MessageRow([]byte(`{"event_id": "e2", "type": "conference.deleted", "conference_id": 7, "version": 4, "occurred_at": "2026-12-03T16:43:25Z", "data": null}`), 43)
	if err != nil || del.Payload != nil {
		t.Errorf("a delete's data null: payload %q, %v; want none", del.Payload, err)
	}
	if _, _, err := del.Entry(); err != nil {
		t.Errorf("Entry of a delete: %v", err)
	}
	for _, bad := range []string{``, `{"event_id": `, `[1]`, `{"version": "3"}`, `{} {}`} {
		if _, err := MessageRow([]byte(bad), 1); !errors.Is(err, ErrMalformed) {
			t.Errorf("MessageRow(%q) = %v; want ErrMalformed", bad, err)
		}
	}
}

func TestValidSlot(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"conferencego_outbox", "s_1", "a"} {
		if !ValidSlot(ok) {
			t.Errorf("ValidSlot(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "Slot", "slot-1", "a b", "x'; DROP TABLE y; --", strings.Repeat("a", 64)} {
		if ValidSlot(bad) {
			t.Errorf("ValidSlot(%q) = true: it would go into SQL unquoted", bad)
		}
	}
}
