// Package telemetry records what the data plane does: Prometheus metrics per
// route and listener, the state of upstream endpoints, and JSON access
// logs. It sits at the end of the request path (the proxy calls it once a
// request is finished) and is read by the admin server's /metrics endpoint.
//
// Handles (RouteStats, ListenerStats) are resolved once, when the proxy
// compiles a configuration, so that recording a request touches only atomic
// counters: no map lookup, no label hashing, no allocation. Upstream
// endpoint metrics cost requests nothing: they are read from the upstream
// Manager at scrape time (WatchUpstreams).
package telemetry

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// durationBuckets spans 0.5 ms to 30 s: the fast local hops of a gateway up
// to the long tail of slow backends and timeouts.
var durationBuckets = []float64{
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
}

// codeClasses are the code_class label values, indexed by code/100-1.
var codeClasses = [5]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// Metrics holds the data plane's metrics in a registry of its own (not the
// global one, so that tests and several instances do not collide).
// A nil *Metrics is valid: its handles are nil and record nothing.
// Its methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	bytesIn     *prometheus.CounterVec
	bytesOut    *prometheus.CounterVec
	connsActive *prometheus.GaugeVec
	connsTotal  *prometheus.CounterVec
	retries     *prometheus.CounterVec
	upstreams   *upstreamCollector

	mu        sync.Mutex
	routes    map[routeKey]*RouteStats
	listeners map[string]*ListenerStats
}

type routeKey struct{ gateway, route, backend string }

// NewMetrics returns Metrics with its own registry, which also carries the
// Go runtime and process collectors.
func NewMetrics() *Metrics {
	rl := []string{"gateway", "route", "backend"}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_http_requests_total",
			Help: "HTTP requests finished, by status class.",
		}, []string{"gateway", "route", "backend", "code_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "causeway_http_request_duration_seconds",
			Help:    "Time from request received to response finished.",
			Buckets: durationBuckets,
		}, rl),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_http_request_bytes_total",
			Help: "Request body bytes received from clients.",
		}, rl),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_http_response_bytes_total",
			Help: "Response body bytes sent to clients.",
		}, rl),
		connsActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "causeway_downstream_connections_active",
			Help: "Client connections currently open.",
		}, []string{"listener"}),
		connsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_downstream_connections_total",
			Help: "Client connections accepted.",
		}, []string{"listener"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "causeway_upstream_retries_total",
			Help: "Retries of failed upstream attempts made by route retry policies.",
		}, []string{"gateway", "route"}),
		upstreams: newUpstreamCollector(),
		routes:    make(map[routeKey]*RouteStats),
		listeners: make(map[string]*ListenerStats),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.bytesIn, m.bytesOut, m.connsActive, m.connsTotal, m.retries,
		m.upstreams,
	)
	return m
}

// Handler serves the Prometheus exposition of the registry.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry returns the registry, for callers that add collectors of their
// own (nil for a nil *Metrics).
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// RouteStats records the requests of one (gateway, route, backend). A nil
// *RouteStats records nothing. Safe for concurrent use.
type RouteStats struct {
	requests [5]prometheus.Counter
	duration prometheus.Observer
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
}

// Route returns the stats handle for one (gateway, route, backend). Call it
// when compiling a configuration, never per request. The same labels return
// the same handle, so counters carry on across reloads. Handles are never
// released: label sets of removed routes keep their last values.
func (m *Metrics) Route(gateway, route, backend string) *RouteStats {
	if m == nil {
		return nil
	}
	k := routeKey{gateway, route, backend}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.routes[k]; ok {
		return s
	}
	s := &RouteStats{
		duration: m.duration.WithLabelValues(gateway, route, backend),
		bytesIn:  m.bytesIn.WithLabelValues(gateway, route, backend),
		bytesOut: m.bytesOut.WithLabelValues(gateway, route, backend),
	}
	for i, c := range codeClasses {
		s.requests[i] = m.requests.WithLabelValues(gateway, route, backend, c)
	}
	m.routes[k] = s
	return s
}

// Observe records one finished request: its status code, its duration and
// the body bytes received and sent. Codes outside 100..599 (such as 0 when
// no response was sent) count as 5xx.
func (s *RouteStats) Observe(code int, d time.Duration, bytesIn, bytesOut int64) {
	if s == nil {
		return
	}
	class := code/100 - 1
	if class < 0 || class > 4 {
		class = 4
	}
	s.requests[class].Inc()
	s.duration.Observe(d.Seconds())
	if bytesIn > 0 {
		s.bytesIn.Add(float64(bytesIn))
	}
	if bytesOut > 0 {
		s.bytesOut.Add(float64(bytesOut))
	}
}

// ListenerStats records the client connections of one listener. A nil
// *ListenerStats records nothing. Safe for concurrent use.
type ListenerStats struct {
	active prometheus.Gauge
	total  prometheus.Counter
}

// Listener returns the stats handle of the named listener; the same name
// returns the same handle.
func (m *Metrics) Listener(name string) *ListenerStats {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.listeners[name]; ok {
		return l
	}
	l := &ListenerStats{
		active: m.connsActive.WithLabelValues(name),
		total:  m.connsTotal.WithLabelValues(name),
	}
	m.listeners[name] = l
	return l
}

// ConnOpened records an accepted connection.
func (l *ListenerStats) ConnOpened() {
	if l == nil {
		return
	}
	l.total.Inc()
	l.active.Inc()
}

// ConnClosed records the end of a connection counted by ConnOpened.
func (l *ListenerStats) ConnClosed() {
	if l == nil {
		return
	}
	l.active.Dec()
}

// Counter is one counter handle; a nil *Counter counts nothing. Safe for
// concurrent use.
type Counter struct{ c prometheus.Counter }

// Inc adds one.
func (c *Counter) Inc() {
	if c != nil {
		c.c.Inc()
	}
}

// Retries returns the retry counter of one route (gateway, route). Call it
// when compiling a configuration, never per request.
func (m *Metrics) Retries(gateway, route string) *Counter {
	if m == nil {
		return nil
	}
	return &Counter{m.retries.WithLabelValues(gateway, route)}
}
