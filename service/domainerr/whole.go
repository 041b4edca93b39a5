package domainerr

// Patch is an input's fields for a T: what it gives, and which of T's fields a create must
// be given.
type Patch[T any] interface {
	RequireAll(v *ValidationError)
	Apply(t *T)
}

// Validator is a *T that checks the rules of a whole T.
type Validator[T any] interface {
	*T
	Validate(v *ValidationError)
}

// Whole returns the T that a create's patch p makes, checked: first that p gives every field
// (the rules of a T with missing fields would only repeat the same problems), then the rules
// of the whole T. The error is a ValidationError naming every field at fault.
func Whole[T any, PT Validator[T]](p Patch[T]) (T, error) {
	var (
		v ValidationError
		t T
	)
	if p.RequireAll(&v); v.Err() != nil {
		return t, &v
	}
	p.Apply(&t)
	if PT(&t).Validate(&v); v.Err() != nil {
		return t, &v
	}
	return t, nil
}
