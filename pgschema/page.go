package pgschema

// Page is a keyset page of rows read with LIMIT limit+1: the extra row, when it came, is not
// part of the page but says that more follow. Each kept row becomes a T through domain.
func Page[R, T any](rows []R, limit int, domain func(R) T) ([]T, bool) {
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = domain(r)
	}
	return out, more
}
