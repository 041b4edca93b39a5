package domainerr

import (
	"errors"
	"testing"
)

type thing struct{ Name string }

func (t *thing) Validate(v *ValidationError) {
	if t.Name == "bad" {
		v.Add("name", "is bad")
	}
}

type thingPatch struct{ Name *string }

func (p thingPatch) RequireAll(v *ValidationError) {
	if p.Name == nil {
		v.Add("name", "is required")
	}
}

func (p thingPatch) Apply(t *thing) {
	if p.Name != nil {
		t.Name = *p.Name
	}
}

func TestWhole(t *testing.T) {
	t.Parallel()
	ptr := func(s string) *string { return &s }
	for _, tc := range []struct {
		name  string
		patch thingPatch
		want  string // the error, "" for none
	}{
		{"complete and valid", thingPatch{Name: ptr("ok")}, ""},
		{"missing a field: its rules are not checked", thingPatch{}, "invalid input: name: is required"},
		{"breaks a rule", thingPatch{Name: ptr("bad")}, "invalid input: name: is bad"},
	} {
		got, err := Whole[thing](tc.patch)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: error %v", tc.name, err)
		case tc.want == "" && got.Name != *tc.patch.Name:
			t.Errorf("%s: got %+v; want the patch applied", tc.name, got)
		case tc.want != "" && (err == nil || err.Error() != tc.want || !errors.Is(err, ErrInvalid)):
			t.Errorf("%s: error %v; want %q matching ErrInvalid", tc.name, err, tc.want)
		}
	}
}
