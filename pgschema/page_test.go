package pgschema_test

import (
	"slices"
	"strconv"
	"testing"

	"conferencego/pgschema"
)

func TestPage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rows  []int
		limit int
		want  []string
		more  bool
	}{
		{nil, 2, []string{}, false},
		{[]int{1}, 2, []string{"1"}, false},
		{[]int{1, 2}, 2, []string{"1", "2"}, false},
		{[]int{1, 2, 3}, 2, []string{"1", "2"}, true}, // the extra row says more follow
	} {
		got, more := pgschema.Page(tc.rows, tc.limit, strconv.Itoa)
		if !slices.Equal(got, tc.want) || more != tc.more || got == nil {
			t.Errorf("Page(%v, %d) = %q, %v; want %q, %v (never nil: it is encoded as a list)", tc.rows, tc.limit, got, more, tc.want, tc.more)
		}
	}
}
