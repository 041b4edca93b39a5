package httpedge

import (
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newHTTPMetrics registers the request metrics on reg. Requests and bytes are counted per
// route so that the comparison can tell what syncing costs the source.
func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests answered, by method, route and status.",
		}, []string{"method", "route", "status"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_response_body_bytes_total", Help: "Bytes of response bodies sent, by method and route.",
		}, []string{"method", "route"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "Time to answer a request, by method and route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.bytes, m.duration)
	return m
}

func (m *httpMetrics) observe(method, route string, status, size int, took time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.bytes.WithLabelValues(method, route).Add(float64(size))
	m.duration.WithLabelValues(method, route).Observe(took.Seconds())
}

// metricsKey is where observe leaves the metrics for a handler that streams its body.
type metricsKey struct{}

// streamMeter returns what a streamed body calls with its size once sent: observe has returned
// by then, and cannot count a body it never held.
func streamMeter(c *fiber.Ctx) func(n int) {
	m, _ := c.Locals(metricsKey{}).(*httpMetrics)
	if m == nil {
		return func(int) {}
	}
	method, route := strings.Clone(c.Method()), strings.Clone(c.Route().Path)
	return func(n int) { m.bytes.WithLabelValues(method, route).Add(float64(n)) }
}

// Metrics answers /metrics with what reg gathered, in the Prometheus text format.
func Metrics(reg *prometheus.Registry) fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
}
