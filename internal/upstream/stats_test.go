package upstream

import (
	"testing"

	"causeway.dev/causeway/internal/ir"
)

// TestEndpointStats follows one endpoint through an ejection, its return,
// and a health check failure and recovery.
func TestEndpointStats(t *testing.T) {
	checkLeaks(t)
	ns := newNodes(t, 2)
	ev := make(events, 100)
	ic := cluster("c", ir.LBRoundRobin, ns)
	ic.Outlier = &ir.OutlierDetection{Consecutive5xx: 2, BaseEjectionTime: ms(200), MaxEjectionPercent: 50}
	ic.HealthCheck = fastCheck()
	ic.HealthCheck.HTTP = &ir.HTTPHealthCheck{Path: "/health"}
	m := newManager(t, Options{OnEndpointEvent: ev.hook}, ic, h1Cluster("b", ns[1].addr()))
	c := m.Cluster("c")
	stat := func(cluster, ep string) EndpointStat {
		t.Helper()
		for _, s := range m.EndpointStats() {
			if s.Cluster == cluster && s.Endpoint == ep {
				return s
			}
		}
		t.Fatalf("no stat for %s %s in %v", cluster, ep, m.EndpointStats())
		return EndpointStat{}
	}
	all := m.EndpointStats()
	if len(all) != 3 || all[0].Cluster != "b" || all[1].Cluster != "c" || all[1].Endpoint != ns[0].addr() {
		t.Fatalf("stats not by cluster, then endpoint order: %v", all)
	}
	if s := stat("c", ns[0].addr()); !s.Up() || s.Ejections != 0 {
		t.Fatalf("fresh endpoint: %+v", s)
	}

	ns[0].status.Store(503)
	for h := ns[0].hits.Load(); ns[0].hits.Load() < h+2; {
		send(t, c, nil)
	}
	ev.wait(t, "ejected "+ns[0].addr())
	if s := stat("c", ns[0].addr()); !s.Ejected || s.Up() || s.Ejections != 1 || !s.Healthy {
		t.Errorf("after ejection: %+v", s)
	}
	ns[0].status.Store(0)
	ev.wait(t, "returned "+ns[0].addr())
	if s := stat("c", ns[0].addr()); s.Ejected || s.Ejections != 1 {
		t.Errorf("after return: %+v", s)
	}

	ns[1].health.Store(500)
	ev.wait(t, "unhealthy "+ns[1].addr())
	if s := stat("c", ns[1].addr()); s.Healthy || s.BecameUnhealthy != 1 || s.BecameHealthy != 0 {
		t.Errorf("after health check failures: %+v", s)
	}
	ns[1].health.Store(0)
	ev.wait(t, "healthy "+ns[1].addr())
	if s := stat("c", ns[1].addr()); !s.Healthy || s.BecameUnhealthy != 1 || s.BecameHealthy != 1 {
		t.Errorf("after recovery: %+v", s)
	}
	// The counts survive a reload that keeps the endpoint.
	m.Update([]*ir.Cluster{ic})
	if s := stat("c", ns[0].addr()); s.Ejections != 1 {
		t.Errorf("after reload: %+v", s)
	}
	if len(m.EndpointStats()) != 2 {
		t.Errorf("removed cluster still reported: %v", m.EndpointStats())
	}
}
