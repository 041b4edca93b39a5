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
	nul := event(2, 1, u)
	nul.Data.Name = "nul\x00name"
	tests := []struct {
		name   string
		events []changeevent.Event
		want   []key
		err    string
	}{
		{"empty", nil, []key{}, ""},
		{"newest per conference, sorted by id",
			[]changeevent.Event{event(3, 1, u), event(1, 2, u), event(3, 5, u), event(1, 1, u), event(2, 1, u)},
			[]key{{1, 2, u}, {2, 1, u}, {3, 5, u}}, ""},
		{"a delete wins a tie",
			[]changeevent.Event{event(1, 4, d), event(1, 4, u)},
			[]key{{1, 4, d}}, ""},
		{"a newer update beats an older delete in the batch",
			[]changeevent.Event{event(1, 5, u), event(1, 4, d)},
			[]key{{1, 5, u}}, ""},
		{"an invalid change refuses the batch, named by index",
			[]changeevent.Event{event(1, 1, u), event(2, 0, u)}, nil, "changes[1]"},
		// What the store used to refuse whole is refused before it: a Batch cannot hold it.
		{"a NUL in a name refuses the batch whole", []changeevent.Event{event(1, 1, u), nul}, nil, "changes[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := attendee.NewBatch(tt.events...)
			if tt.err != "" {
				if !errors.Is(err, attendee.ErrInvalid) || !strings.Contains(err.Error(), tt.err) || len(b.Changes) != 0 {
					t.Errorf("NewBatch = %+v, %v; want no batch and ErrInvalid mentioning %q", b, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, keys(b.Normalize())); diff != "" {
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
			c, err := attendee.CheckChange(tt.e)
			if tt.want == "" {
				if err != nil || !cmp.Equal(c.Event(), tt.e) {
					t.Errorf("CheckChange = %+v, %v; want the event back and nil", c.Event(), err)
				}
				return
			}
			if !errors.Is(err, attendee.ErrInvalid) || !errors.Is(err, changeevent.ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckChange = %v, want ErrInvalid and ErrMalformed mentioning %q", err, tt.want)
			}
		})
	}
}

// The edge constructors check the limits of the copy on top of the contract's rules, which
// changeevent applies while decoding.
func TestEdgeConstructorsCheckTheLimits(t *testing.T) {
	t.Parallel()
	nul := event(1, 1, changeevent.Created)
	nul.Data.Name = "a\x00b"
	fields, err := nul.Fields() // the contract allows a NUL; the copy cannot store it
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{}
	for i := 0; i < len(fields); i += 2 {
		values[fields[i]] = fields[i+1]
	}
	if _, err := attendee.DecodeChange(values); !errors.Is(err, attendee.ErrInvalid) || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("DecodeChange of a NUL name = %v, want ErrInvalid mentioning NUL", err)
	}
	if _, err := attendee.DecodeChange(map[string]any{"hello": "world"}); !errors.Is(err, changeevent.ErrMalformed) {
		t.Errorf("DecodeChange of garbage = %v, want ErrMalformed", err)
	}
	j, err := changeevent.ChangeOf(nul)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attendee.BatchFrom([]changeevent.Change{j}); !errors.Is(err, attendee.ErrInvalid) || !strings.Contains(err.Error(), "changes[0]") {
		t.Errorf("BatchFrom with a NUL name = %v, want ErrInvalid naming changes[0]", err)
	}
	good := event(2, 1, changeevent.Created)
	if j, err = changeevent.ChangeOf(good); err != nil {
		t.Fatal(err)
	}
	c, err := attendee.ChangeFrom(j)
	if err != nil || !cmp.Equal(c.Event(), good) {
		t.Errorf("ChangeFrom = %+v, %v; want %+v", c.Event(), err, good)
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
