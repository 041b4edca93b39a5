package conference_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"conferencego/api-conference/internal/conference"
)

func validConference() conference.Conference {
	return conference.Conference{
		Name: "GopherCon", Starts: time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC),
		Ends: time.Date(2027, 3, 3, 17, 0, 0, 0, time.UTC), MaxPresentations: 10, MaxAttendees: 100, LocationID: 1,
	}
}

func fields(err error) []string {
	var v *conference.ValidationError
	if !errors.As(err, &v) {
		return nil
	}
	var out []string
	for _, f := range v.Fields {
		out = append(out, f.Field)
	}
	return out
}

func TestConferenceValidate(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		change func(*conference.Conference)
		want   []string
	}{
		"valid":                {func(*conference.Conference) {}, nil},
		"empty name":           {func(c *conference.Conference) { c.Name = "  " }, []string{"name"}},
		"long name":            {func(c *conference.Conference) { c.Name = strings.Repeat("é", conference.MaxNameLen+1) }, []string{"name"}},
		"name at limit":        {func(c *conference.Conference) { c.Name = strings.Repeat("é", conference.MaxNameLen) }, nil},
		"NUL in name":          {func(c *conference.Conference) { c.Name = "Go\x00Con" }, []string{"name"}},
		"invalid UTF-8":        {func(c *conference.Conference) { c.Description = "\xff\xfe" }, []string{"description"}},
		"ends before starts":   {func(c *conference.Conference) { c.Ends = c.Starts.Add(-time.Hour) }, []string{"ends"}},
		"one-day conference":   {func(c *conference.Conference) { c.Ends = c.Starts }, nil},
		"negative attendees":   {func(c *conference.Conference) { c.MaxAttendees = -1 }, []string{"max_attendees"}},
		"huge presentations":   {func(c *conference.Conference) { c.MaxPresentations = conference.MaxCount + 1 }, []string{"max_presentations"}},
		"year 10000":           {func(c *conference.Conference) { c.Ends = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, []string{"ends"}},
		"no location":          {func(c *conference.Conference) { c.LocationID = 0 }, []string{"location"}},
		"several at once":      {func(c *conference.Conference) { c.Name = ""; c.MaxAttendees = -5 }, []string{"name", "max_attendees"}},
		"zero counts are fine": {func(c *conference.Conference) { c.MaxAttendees = 0; c.MaxPresentations = 0 }, nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := validConference()
			tt.change(&c)
			var v conference.ValidationError
			c.Validate(&v)
			if diff := cmp.Diff(tt.want, fields(v.Err())); diff != "" {
				t.Errorf("fields with problems (-want +got):\n%s", diff)
			}
			if err := v.Err(); err != nil && !errors.Is(err, conference.ErrInvalid) {
				t.Errorf("%v does not match ErrInvalid", err)
			}
		})
	}
}

func TestConferenceValidateNormalises(t *testing.T) {
	t.Parallel()
	c := validConference()
	c.Name = "  GopherCon  "
	c.Starts = time.Date(2027, 3, 1, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	var v conference.ValidationError
	c.Validate(&v)
	if err := v.Err(); err != nil {
		t.Fatal(err)
	}
	if c.Name != "GopherCon" {
		t.Errorf("name = %q, want it trimmed", c.Name)
	}
	if want := time.Date(2027, 3, 1, 9, 0, 0, 123456000, time.UTC); !c.Starts.Equal(want) || c.Starts.Location() != time.UTC {
		t.Errorf("starts = %v, want %v (UTC, microseconds)", c.Starts, want)
	}
}

func TestLocationValidate(t *testing.T) {
	t.Parallel()
	valid := func() conference.Location {
		return conference.Location{Name: "Hall", City: "Austin", RoomCount: 3, State: "tx", PictureURL: "https://example.com/a.png"}
	}
	tests := map[string]struct {
		change func(*conference.Location)
		want   []string
	}{
		"valid":            {func(*conference.Location) {}, nil},
		"no picture":       {func(l *conference.Location) { l.PictureURL = "" }, nil},
		"bad picture":      {func(l *conference.Location) { l.PictureURL = "javascript:alert(1)" }, []string{"picture_url"}},
		"long state":       {func(l *conference.Location) { l.State = "Texas" }, []string{"state"}},
		"negative rooms":   {func(l *conference.Location) { l.RoomCount = -2 }, []string{"room_count"}},
		"empty city":       {func(l *conference.Location) { l.City = "" }, []string{"city"}},
		"NUL in city name": {func(l *conference.Location) { l.City = "\x00" }, []string{"city"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := valid()
			tt.change(&l)
			var v conference.ValidationError
			l.Validate(&v)
			if diff := cmp.Diff(tt.want, fields(v.Err())); diff != "" {
				t.Errorf("fields with problems (-want +got):\n%s", diff)
			}
		})
	}
	l := valid()
	var v conference.ValidationError
	l.Validate(&v)
	if l.State != "TX" {
		t.Errorf("state = %q, want it upper-cased", l.State)
	}
}

func TestPresentationValidate(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		email string
		ok    bool
	}{
		"plain":         {"ada@example.com", true},
		"no at":         {"ada.example.com", false},
		"display name":  {"Ada <ada@example.com>", false},
		"no domain dot": {"ada@localhost", false},
		"empty":         {"", false},
		"too long":      {strings.Repeat("a", 250) + "@example.com", false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := conference.Presentation{PresenterName: "Ada", PresenterEmail: tt.email, Title: "Go", Synopsis: ""}
			var v conference.ValidationError
			p.Validate(&v)
			if got := v.Err() == nil; got != tt.ok {
				t.Errorf("valid = %v, want %v (%v)", got, tt.ok, v.Err())
			}
		})
	}
}

func TestTransition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from, to string
		conflict bool
	}{
		{conference.StatusSubmitted, conference.StatusApproved, false},
		{conference.StatusSubmitted, conference.StatusRejected, false},
		{conference.StatusApproved, conference.StatusApproved, false},
		{conference.StatusApproved, conference.StatusRejected, false},
		{conference.StatusRejected, conference.StatusApproved, false},
		{conference.StatusRejected, conference.StatusRejected, false},
	}
	for _, tt := range tests {
		got, err := conference.Transition(tt.from, tt.to)
		if tt.conflict {
			if !errors.Is(err, conference.ErrConflict) {
				t.Errorf("%s -> %s: err = %v, want ErrConflict", tt.from, tt.to, err)
			}
			continue
		}
		if err != nil || got != tt.to {
			t.Errorf("%s -> %s = %q, %v", tt.from, tt.to, got, err)
		}
	}
}

func TestPatchApplyKeepsAbsentFields(t *testing.T) {
	t.Parallel()
	c := validConference()
	name := "RustConf"
	conference.ConferencePatch{Name: &name}.Apply(&c)
	want := validConference()
	want.Name = "RustConf"
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("patched conference (-want +got):\n%s", diff)
	}
}
