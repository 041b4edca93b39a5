package reconcile

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"conferencego/syncer/internal/syncapi"
)

// Guard remembers that api-conference answers as another source than the one the copy is
// bound to. While it is set, nothing is handed over; /readyz and the metric
// sync_source_mismatch say so, and the copy keeps what it had.
type Guard struct {
	mu    sync.Mutex
	err   *syncapi.MismatchError
	gauge prometheus.Gauge
}

// NewGuard returns a Guard whose gauge is registered with reg.
func NewGuard(reg prometheus.Registerer) *Guard {
	g := &Guard{gauge: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sync_source_mismatch",
		Help: "1 while api-conference is another source than the one api-attendee's copy is bound to; nothing is handed over then.",
	})}
	reg.MustRegister(g.gauge)
	return g
}

// Note records err if it is a mismatch and reports whether it is one, and whether it is new
// (so that a caller logs it once, not at every poll). Any other error leaves the guard as is.
func (g *Guard) Note(err error) (mismatch, fresh bool) {
	var m *syncapi.MismatchError
	if !errors.As(err, &m) {
		if !errors.Is(err, syncapi.ErrSourceMismatch) {
			return false, false
		}
		m = &syncapi.MismatchError{Bound: "(see api-attendee)", Seen: "(this source)"}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	fresh = g.err == nil || *g.err != *m
	g.err = m
	g.gauge.Set(1)
	return true, fresh
}

// Clear forgets a mismatch and reports whether there was one.
func (g *Guard) Clear() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	was := g.err != nil
	g.err = nil
	g.gauge.Set(0)
	return was
}

// Err is the mismatch, or nil.
func (g *Guard) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil {
		return nil
	}
	return g.err
}
