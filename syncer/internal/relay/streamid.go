package relay

import (
	"fmt"
	"strconv"
	"strings"
)

// streamID is a stream entry ID, "ms-seq", as its two numbers.
type streamID struct{ ms, seq int64 }

func parseID(id string) (streamID, error) {
	ms, seq, ok := strings.Cut(id, "-")
	m, err1 := strconv.ParseInt(ms, 10, 64)
	n, err2 := strconv.ParseInt(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil || m < 0 || n < 0 {
		return streamID{}, fmt.Errorf("stream entry ID %q is not ms-seq", id)
	}
	return streamID{m, n}, nil
}

func (a streamID) before(b streamID) bool {
	return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq)
}

func (a streamID) String() string {
	return strconv.FormatInt(a.ms, 10) + "-" + strconv.FormatInt(a.seq, 10)
}

// idBefore reports whether stream entry id a is older than b; an ID that does not parse
// counts as 0-0.
func idBefore(a, b string) bool {
	x, _ := parseID(a)
	y, _ := parseID(b)
	return x.before(y)
}
