package domainerr

import (
	"errors"
	"fmt"
	"testing"
)

func TestValidationError(t *testing.T) {
	t.Parallel()
	var v ValidationError
	if v.Err() != nil {
		t.Fatal("an empty ValidationError is an error")
	}
	v.Add("name", "is required")
	v.Add("ends", "must be after starts")
	err := fmt.Errorf("create: %w", v.Err())
	if !errors.Is(err, ErrInvalid) || !Known(err) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	if got, want := v.Error(), "invalid input: name: is required; ends: must be after starts"; got != want {
		t.Errorf("Error = %q, want %q", got, want)
	}
	if !errors.Is(Invalid("x", "bad"), ErrInvalid) {
		t.Error("Invalid does not match ErrInvalid")
	}
	if Known(errors.New("driver says no")) {
		t.Error("Known(an unknown error) = true")
	}
}

func TestFieldChecks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		check func(v *ValidationError)
		want  string // "" for no problem
	}{
		{"text ok", func(v *ValidationError) { v.CheckText("f", "héllo", 5) }, ""},
		{"text too long", func(v *ValidationError) { v.CheckText("f", "héllo!", 5) }, "f: must be at most 5 characters"},
		{"text not UTF-8", func(v *ValidationError) { v.CheckText("f", "\xff", 5) }, "f: must be valid UTF-8"},
		{"text with NUL", func(v *ValidationError) { v.CheckText("f", "a\x00", 5) }, "f: must not contain NUL characters"},
		{"email ok", func(v *ValidationError) { v.CheckEmail("e", "ada@example.com", 254) }, ""},
		{"email empty", func(v *ValidationError) { v.CheckEmail("e", "", 254) }, "e: must not be empty"},
		{"email too long", func(v *ValidationError) { v.CheckEmail("e", "ada@example.com", 5) }, "e: must be at most 5 characters"},
		{"email with a name", func(v *ValidationError) { v.CheckEmail("e", "Ada <ada@example.com>", 254) }, "e: must be an e-mail address like name@example.com"},
		{"email without a dot in the host", func(v *ValidationError) { v.CheckEmail("e", "ada@localhost", 254) }, "e: must be an e-mail address like name@example.com"},
		{"email with NUL", func(v *ValidationError) { v.CheckEmail("e", "a\x00@example.com", 254) }, "e: must be an e-mail address like name@example.com"},
	} {
		var v ValidationError
		tc.check(&v)
		got := ""
		if err := v.Err(); err != nil {
			got = fmt.Sprintf("%s: %s", v.Fields[0].Field, v.Fields[0].Message)
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
