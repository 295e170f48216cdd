package upstream

import (
	"slices"
	"strings"
)

// EndpointStat is the state of one endpoint of one cluster, for metrics.
type EndpointStat struct {
	Cluster  string
	Endpoint string // "IP:port" or a unix socket path
	// Healthy: the endpoint passes its active health checks (always true
	// without them).
	Healthy bool
	// Ejected: outlier detection has taken it out, for now.
	Ejected bool
	// Ejections counts the times outlier detection ejected it;
	// BecameHealthy and BecameUnhealthy count active health check
	// verdicts that changed its state. They start at zero when the
	// endpoint joins the cluster and go on across reloads that keep it.
	Ejections, BecameHealthy, BecameUnhealthy uint64
}

// Up reports whether the endpoint takes traffic (outside panic mode).
func (s *EndpointStat) Up() bool { return s.Healthy && !s.Ejected }

// EndpointStats returns the state of every endpoint of every current
// cluster, by cluster name, then in the cluster's endpoint order. It takes
// each cluster's lock briefly; call it from a metrics scrape, not per
// request.
func (m *Manager) EndpointStats() []EndpointStat {
	p := m.clusters.Load()
	if p == nil {
		return nil
	}
	cs := make([]*Cluster, 0, len(*p))
	n := 0
	for _, c := range *p {
		cs = append(cs, c)
		n += len(c.state.Load().members)
	}
	slices.SortFunc(cs, func(a, b *Cluster) int { return strings.Compare(a.name, b.name) })
	out := make([]EndpointStat, 0, n)
	for _, c := range cs {
		c.mu.Lock()
		for _, mb := range c.members {
			out = append(out, EndpointStat{
				Cluster:         c.name,
				Endpoint:        mb.ep.addr,
				Healthy:         mb.hcOK,
				Ejected:         mb.ejected,
				Ejections:       mb.ejectedTotal,
				BecameHealthy:   mb.toHealthy,
				BecameUnhealthy: mb.toUnhealthy,
			})
		}
		c.mu.Unlock()
	}
	return out
}
