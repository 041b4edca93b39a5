package attendee_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"conferencego/api-attendee/internal/attendee"
	"conferencego/syncer/changeevent"
)

func event(id, version int64, typ changeevent.Type) changeevent.Event {
	e := changeevent.Event{
		ID: "e", Type: typ, ConferenceID: id, Version: version,
		OccurredAt: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
	}
	if typ != changeevent.Deleted {
		starts := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
		e.Data = &changeevent.Conference{ID: id, Name: "C", Starts: starts, Ends: starts.Add(time.Hour), MaxAttendees: 3}
	}
	return e
}

type key struct {
	ID      int64
	Version int64
	Type    changeevent.Type
}

func keys(es []changeevent.Event) []key {
	out := make([]key, len(es))
	for i, e := range es {
		out[i] = key{e.ConferenceID, e.Version, e.Type}
	}
	return out
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	u, d := changeevent.Updated, changeevent.Deleted
	tests := []struct {
		name  string
		batch attendee.Batch
		want  []key
		err   string
	}{
		{"empty", attendee.Batch{}, []key{}, ""},
		{"newest per conference, sorted by id",
			attendee.Batch{Changes: []changeevent.Event{event(3, 1, u), event(1, 2, u), event(3, 5, u), event(1, 1, u), event(2, 1, u)}},
			[]key{{1, 2, u}, {2, 1, u}, {3, 5, u}}, ""},
		{"a delete wins a tie",
			attendee.Batch{Changes: []changeevent.Event{event(1, 4, d), event(1, 4, u)}},
			[]key{{1, 4, d}}, ""},
		{"a newer update beats an older delete in the batch",
			attendee.Batch{Changes: []changeevent.Event{event(1, 5, u), event(1, 4, d)}},
			[]key{{1, 5, u}}, ""},
		{"an invalid change is named by index",
			attendee.Batch{Changes: []changeevent.Event{event(1, 1, u), event(2, 0, u)}}, nil, "changes[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.batch.Normalize()
			if tt.err != "" {
				if !errors.Is(err, attendee.ErrInvalid) || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("err = %v, want ErrInvalid mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, keys(got)); diff != "" {
				t.Errorf("normalized (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckChange(t *testing.T) {
	t.Parallel()
	mod := func(f func(e *changeevent.Event)) changeevent.Event {
		e := event(1, 1, changeevent.Created)
		f(&e)
		return e
	}
	tests := []struct {
		name string
		e    changeevent.Event
		want string // "" for valid
	}{
		{"valid", event(1, 1, changeevent.Created), ""},
		{"valid delete", event(1, 2, changeevent.Deleted), ""},
		{"contract violation", mod(func(e *changeevent.Event) { e.ID = "" }), "event_id"},
		{"NUL in name", mod(func(e *changeevent.Event) { e.Data.Name = "a\x00b" }), "NUL"},
		{"invalid UTF-8", mod(func(e *changeevent.Event) { e.Data.Name = "\xff" }), "UTF-8"},
		{"over-long name", mod(func(e *changeevent.Event) { e.Data.Name = strings.Repeat("n", 10001) }), "longer"},
		{"over-long href", mod(func(e *changeevent.Event) { e.Data.Href = strings.Repeat("h", 2001) }), "longer"},
		{"year 10000", mod(func(e *changeevent.Event) { e.Data.Ends = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }), "data.ends"},
		{"max_attendees beyond int32", mod(func(e *changeevent.Event) { e.Data.MaxAttendees = 1 << 31 }), "max_attendees"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := attendee.CheckChange(tt.e)
			if tt.want == "" {
				if err != nil {
					t.Errorf("CheckChange = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, attendee.ErrInvalid) || !errors.Is(err, changeevent.ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckChange = %v, want ErrInvalid and ErrMalformed mentioning %q", err, tt.want)
			}
		})
	}
}

func TestAttendeeValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		a      attendee.Attendee
		fields []string
	}{
		{"valid, trimmed", attendee.Attendee{Email: " ada@example.com ", Name: " Ada "}, nil},
		{"empty", attendee.Attendee{}, []string{"email", "name"}},
		{"bad e-mail", attendee.Attendee{Email: "ada", Name: "Ada"}, []string{"email"}},
		{"display-name e-mail", attendee.Attendee{Email: "Ada <ada@example.com>", Name: "Ada"}, []string{"email"}},
		{"NUL in company", attendee.Attendee{Email: "ada@example.com", Name: "Ada", CompanyName: "\x00"}, []string{"company_name"}},
		{"long name", attendee.Attendee{Email: "ada@example.com", Name: strings.Repeat("é", 201)}, []string{"name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var v attendee.ValidationError
			a := tt.a
			a.Validate(&v)
			var got []string
			for _, f := range v.Fields {
				got = append(got, f.Field)
			}
			if diff := cmp.Diff(tt.fields, got); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCanRegister(t *testing.T) {
	t.Parallel()
	c := attendee.ConferenceVO{ID: 1, MaxAttendees: 2}
	if err := c.CanRegister(1); err != nil {
		t.Errorf("one of two places taken: %v", err)
	}
	if err := c.CanRegister(2); !errors.Is(err, attendee.ErrConflict) {
		t.Errorf("full: %v, want ErrConflict", err)
	}
	c.Deleted = true
	if err := c.CanRegister(0); !errors.Is(err, attendee.ErrConflict) || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("deleted: %v, want ErrConflict saying deleted", err)
	}
}
