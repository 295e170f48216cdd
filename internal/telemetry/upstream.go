package telemetry

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"causeway.dev/causeway/internal/upstream"
)

// Upstream endpoint metrics are read from the upstream Manager when
// /metrics is scraped, not counted on events: the gauges then always
// equal the state requests see, and the series of clusters and endpoints
// that a reload removed disappear instead of keeping a stale value. The
// counters are the Manager's own (see upstream.EndpointStat); they start
// at zero when an endpoint joins a cluster.
type upstreamCollector struct {
	src atomic.Pointer[upstream.Manager]

	ejections, ejected, transitions, healthy, endpoints *prometheus.Desc
}

func newUpstreamCollector() *upstreamCollector {
	ep := []string{"cluster", "endpoint"}
	return &upstreamCollector{
		ejections: prometheus.NewDesc("causeway_upstream_endpoint_ejections_total",
			"Times outlier detection ejected the endpoint from the cluster.", ep, nil),
		ejected: prometheus.NewDesc("causeway_upstream_endpoint_ejected",
			"1 while outlier detection keeps the endpoint out of the cluster, else 0.", ep, nil),
		transitions: prometheus.NewDesc("causeway_upstream_health_transitions_total",
			"Active health check verdicts that changed the endpoint's state, by the state entered.",
			[]string{"cluster", "endpoint", "to"}, nil),
		healthy: prometheus.NewDesc("causeway_upstream_endpoints_healthy",
			"Endpoints of the cluster that pass health checks and are not ejected.", []string{"cluster"}, nil),
		endpoints: prometheus.NewDesc("causeway_upstream_endpoints",
			"Endpoints of the cluster.", []string{"cluster"}, nil),
	}
}

func (u *upstreamCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- u.ejections
	ch <- u.ejected
	ch <- u.transitions
	ch <- u.healthy
	ch <- u.endpoints
}

func (u *upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	m := u.src.Load()
	if m == nil {
		return
	}
	stats := m.EndpointStats()
	for i := 0; i < len(stats); {
		cluster := stats[i].Cluster
		up, n := 0, 0
		for ; i < len(stats) && stats[i].Cluster == cluster; i++ {
			s := &stats[i]
			n++
			ejected := 0.0
			if s.Ejected {
				ejected = 1
			}
			if s.Up() {
				up++
			}
			ch <- prometheus.MustNewConstMetric(u.ejections, prometheus.CounterValue, float64(s.Ejections), cluster, s.Endpoint)
			ch <- prometheus.MustNewConstMetric(u.ejected, prometheus.GaugeValue, ejected, cluster, s.Endpoint)
			ch <- prometheus.MustNewConstMetric(u.transitions, prometheus.CounterValue, float64(s.BecameHealthy), cluster, s.Endpoint, "healthy")
			ch <- prometheus.MustNewConstMetric(u.transitions, prometheus.CounterValue, float64(s.BecameUnhealthy), cluster, s.Endpoint, "unhealthy")
		}
		ch <- prometheus.MustNewConstMetric(u.healthy, prometheus.GaugeValue, float64(up), cluster)
		ch <- prometheus.MustNewConstMetric(u.endpoints, prometheus.GaugeValue, float64(n), cluster)
	}
}

// WatchUpstreams makes /metrics report the endpoints of u's clusters:
// ejections, ejected state, health check transitions and healthy
// endpoints per cluster (see upstreamCollector). A later call replaces u;
// nil stops the reporting. A nil *Metrics does nothing.
func (m *Metrics) WatchUpstreams(u *upstream.Manager) {
	if m == nil {
		return
	}
	m.upstreams.src.Store(u)
}
