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
