package changeevent_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"conferencego/syncer/changeevent"
)

func validEvent() changeevent.Event {
	at := time.Date(2026, 11, 25, 18, 30, 1, 123456789, time.UTC)
	return changeevent.Event{
		ID:           "0b6f5c1e-8d2a-4f7e-9c1a-3e2d4f5a6b7c",
		Type:         changeevent.Updated,
		ConferenceID: 7,
		Version:      3,
		OccurredAt:   at,
		Data: &changeevent.Conference{
			ID:           7,
			Href:         changeevent.Href(7),
			Name:         "GopherCon",
			Starts:       time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC),
			Ends:         time.Date(2027, 3, 3, 17, 0, 0, 0, time.UTC),
			MaxAttendees: 500,
			Location:     changeevent.Location{Name: "Convention Center", City: "Austin", State: "TX"},
		},
	}
}

// toValues turns Fields into the map go-redis hands a consumer.
func toValues(t *testing.T, fields []string) map[string]any {
	t.Helper()
	if len(fields)%2 != 0 {
		t.Fatalf("odd number of field strings: %d", len(fields))
	}
	m := make(map[string]any, len(fields)/2)
	for i := 0; i < len(fields); i += 2 {
		m[fields[i]] = fields[i+1]
	}
	return m
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	deleted := validEvent()
	deleted.Type = changeevent.Deleted
	deleted.Data = nil
	created := validEvent()
	created.Type = changeevent.Created
	created.Version = 1
	nonUTC := validEvent()
	nonUTC.OccurredAt = nonUTC.OccurredAt.In(time.FixedZone("CET", 3600))

	for name, e := range map[string]changeevent.Event{"updated": validEvent(), "created": created, "deleted": deleted, "non-utc time": nonUTC} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fields, err := e.Fields()
			if err != nil {
				t.Fatalf("Fields: %v", err)
			}
			got, err := changeevent.Decode(toValues(t, fields))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !got.OccurredAt.Equal(e.OccurredAt) || got.OccurredAt.Location() != time.UTC {
				t.Errorf("occurred_at = %v, want %v in UTC", got.OccurredAt, e.OccurredAt)
			}
			e.OccurredAt = got.OccurredAt
			if diff := cmp.Diff(e, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFieldsOrderIsStable(t *testing.T) {
	t.Parallel()
	fields, err := validEvent().Fields()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := 0; i < len(fields); i += 2 {
		names = append(names, fields[i])
	}
	want := []string{"event_id", "type", "conference_id", "version", "occurred_at", "data"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("field names (-want +got):\n%s", diff)
	}
	if got := fields[9]; got != "2026-11-25T18:30:01.123456789Z" {
		t.Errorf("occurred_at = %q, want RFC 3339 with nanoseconds", got)
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	good, err := validEvent().Fields()
	if err != nil {
		t.Fatal(err)
	}
	with := func(field string, value any) map[string]any {
		m := toValues(t, good)
		if value == nil {
			delete(m, field)
		} else {
			m[field] = value
		}
		return m
	}
	tests := map[string]struct {
		values map[string]any
		reason string
	}{
		"unknown type":          {with("type", "conference.renamed"), "unknown type"},
		"missing event_id":      {with("event_id", nil), "event_id is missing"},
		"empty event_id":        {with("event_id", ""), "event_id is empty"},
		"huge event_id":         {with("event_id", strings.Repeat("x", 1000)), "event_id"},
		"missing type":          {with("type", nil), "type is missing"},
		"missing conference_id": {with("conference_id", nil), "conference_id is missing"},
		"missing version":       {with("version", nil), "version is missing"},
		"missing occurred_at":   {with("occurred_at", nil), "occurred_at is missing"},
		"missing data":          {with("data", nil), "data is missing"},
		"bad version":           {with("version", "three"), "version is not an integer"},
		"zero version":          {with("version", "0"), "version 0 is not positive"},
		"negative version":      {with("version", "-4"), "version -4 is not positive"},
		"float version":         {with("version", "1.5"), "version is not an integer"},
		"overflowing version":   {with("version", "99999999999999999999"), "version is not an integer"},
		"bad conference_id":     {with("conference_id", "7x"), "conference_id is not an integer"},
		"bad occurred_at":       {with("occurred_at", "yesterday"), "not RFC 3339"},
		"bad JSON":              {with("data", `{"id": 7, "name": `), "data"},
		"JSON array":            {with("data", `[1,2]`), "data"},
		"trailing JSON":         {with("data", `{"id":7} {"id":8}`), "trailing"},

		"wrong JSON type":        {with("data", `{"id":"seven"}`), "data"},
		"update without data":    {with("data", ""), "needs data"},
		"data for other id":      {with("conference_id", "8"), "differs from conference_id"},
		"delete with data":       {with("type", "conference.deleted"), "a delete carries no data"},
		"non-string field value": {with("version", 3), "not a string"},
		"data without name":      {with("data", `{"id":7,"starts":"2027-03-01T09:00:00Z","ends":"2027-03-02T09:00:00Z"}`), "data.name is empty"},
		"nothing at all":         {map[string]any{}, "missing"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := changeevent.Decode(tt.values)
			if err == nil {
				t.Fatalf("Decode succeeded with %+v, want an error", got)
			}
			if !errors.Is(err, changeevent.ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			if diff := cmp.Diff(changeevent.Event{}, got); diff != "" {
				t.Errorf("Decode returned a non-zero event with its error:\n%s", diff)
			}
		})
	}
}

func TestFieldsRefusesInvalidEvents(t *testing.T) {
	t.Parallel()
	noID := validEvent()
	noID.ID = ""
	noTime := validEvent()
	noTime.OccurredAt = time.Time{}
	badType := validEvent()
	badType.Type = "conference.moved"
	for name, e := range map[string]changeevent.Event{"no id": noID, "no time": noTime, "bad type": badType} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := e.Fields(); !errors.Is(err, changeevent.ErrMalformed) {
				t.Errorf("Fields() error = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestHref(t *testing.T) {
	t.Parallel()
	if got := changeevent.Href(7); got != "/api/conferences/7/" {
		t.Errorf("Href(7) = %q", got)
	}
}

func FuzzDecode(f *testing.F) {
	good, err := validEvent().Fields()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good[1], good[3], good[5], good[7], good[9], good[11])
	f.Add("id", "conference.deleted", "1", "2", "2026-01-01T00:00:00Z", "")
	f.Fuzz(func(t *testing.T, id, typ, confID, version, at, data string) {
		e, err := changeevent.Decode(map[string]any{
			"event_id": id, "type": typ, "conference_id": confID, "version": version, "occurred_at": at, "data": data,
		})
		if err != nil {
			if !errors.Is(err, changeevent.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// Whatever decodes must be valid and must survive a second trip unchanged.
		fields, err := e.Fields()
		if err != nil {
			t.Fatalf("decoded event does not encode: %v", err)
		}
		again, err := changeevent.Decode(map[string]any{
			fields[0]: fields[1], fields[2]: fields[3], fields[4]: fields[5],
			fields[6]: fields[7], fields[8]: fields[9], fields[10]: fields[11],
		})
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if diff := cmp.Diff(e, again); diff != "" {
			t.Fatalf("second trip differs:\n%s", diff)
		}
	})
}

// A producer may ship a payload field before its consumers know it; they apply the rest.
func TestDecodeIgnoresUnknownPayloadFields(t *testing.T) {
	t.Parallel()
	fields, err := validEvent().Fields()
	if err != nil {
		t.Fatal(err)
	}
	values := toValues(t, fields)
	data := values["data"].(string)
	values["data"] = strings.Replace(data, `{"id":7,`, `{"id":7,"timezone":"America/Chicago",`, 1)
	got, err := changeevent.Decode(values)
	if err != nil {
		t.Fatalf("Decode with an unknown payload field: %v", err)
	}
	if diff := cmp.Diff(validEvent(), got); diff != "" {
		t.Errorf("decoded event (-want +got):\n%s", diff)
	}
}

func TestChangeJSONRoundTrip(t *testing.T) {
	t.Parallel()
	deleted := validEvent()
	deleted.Type, deleted.Data, deleted.Version = changeevent.Deleted, nil, 4
	for name, e := range map[string]changeevent.Event{"updated": validEvent(), "deleted": deleted} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := changeevent.ChangeOf(e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Event()
			if err != nil {
				t.Fatalf("Event: %v", err)
			}
			if diff := cmp.Diff(e, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := (changeevent.Change{EventID: "x", Type: "conference.moved", ConferenceID: 1, Version: 1, OccurredAt: time.Now()}).Event(); !errors.Is(err, changeevent.ErrMalformed) {
		t.Errorf("unknown type: err = %v, want ErrMalformed", err)
	}
}
