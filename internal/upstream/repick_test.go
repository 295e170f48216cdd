package upstream

import (
	"testing"

	"causeway.dev/causeway/internal/ir"
)

// TestKilledEndpointRepicked: GETs to a cluster one of whose endpoints was
// killed with connections pooled never fail: a request that finds a stale
// pooled connection and then a refused dial goes to another endpoint.
// Regression: the refused redial was reported as touched, so the request
// failed with 503 (seen once per ~200 requests under a locality
// distribution, whose sparse picks of the dead zone met its stale
// connections).
func TestKilledEndpointRepicked(t *testing.T) {
	for _, dist := range [][]ir.LocalityDistribution{nil, threeZones} {
		ns := newNodes(t, 3)
		ic := h1Cluster("c")
		for i, n := range ns {
			ic.Endpoints = append(ic.Endpoints, ir.Endpoint{Address: n.addr(), Zone: zoneOf[i].zone, Region: zoneOf[i].region})
		}
		ic.LoadBalancer = &ir.LoadBalancer{LocalityDistribute: dist}
		m := newManager(t, Options{Region: "r1", Zone: "a"}, ic)
		tally(t, m.Cluster("c"), 100) // every endpoint has pooled connections
		ns[2].Close()
		for i := range 400 {
			if _, _, err := send(t, m.Cluster("c"), nil); err != nil {
				t.Fatalf("distribution %v: request %d after the kill: %v", dist != nil, i, err)
			}
		}
	}
}
