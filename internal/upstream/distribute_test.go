package upstream

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"causeway.dev/causeway/internal/ir"
)

// threeZones is a rule for gateways in r1/a: 70% to their zone, 20% to
// zone b of their region, 10% to the other region.
var threeZones = []ir.LocalityDistribution{
	{From: "r1/a", To: []ir.LocalityWeight{{Locality: "r1/a", Weight: 70}, {Locality: "r1/b", Weight: 20}, {Locality: "r2/*", Weight: 10}}},
	{From: "*/*", To: []ir.LocalityWeight{{Locality: "*/*", Weight: 100}}},
}

var zoneOf = [3]struct{ region, zone string }{{"r1", "a"}, {"r1", "b"}, {"r2", "c"}}

// distCluster builds a cluster of n endpoints (never dialled), spread
// round-robin over zones r1/a, r1/b and r2/c, with threeZones.
func distCluster(tb testing.TB, policy ir.LBPolicy, n int) (*Manager, *Cluster) {
	ic := &ir.Cluster{Name: "c", LoadBalancer: &ir.LoadBalancer{Policy: policy,
		HashOn: []ir.HashKey{{Header: "x-user"}}, LocalityDistribute: threeZones}}
	for i := range n {
		z := zoneOf[i%3]
		ic.Endpoints = append(ic.Endpoints, ir.Endpoint{Address: fmt.Sprintf("127.0.%d.%d:80", i/250, i%250+1),
			Weight: int32(1 + i%5), Zone: z.zone, Region: z.region})
	}
	m := NewManager(Options{Region: "r1", Zone: "a"})
	m.Update([]*ir.Cluster{ic})
	return m, m.Cluster("c")
}

// TestDistributeShares: over many picks, each zone's share is its weight,
// for every picker. Round robin is exact over whole cycles of 100; the
// others are within 5 standard deviations of a binomial (a flake once in
// millions of runs).
func TestDistributeShares(t *testing.T) {
	want := map[string]float64{"a": 0.70, "b": 0.20, "c": 0.10}
	for _, p := range policies {
		t.Run(string(p), func(t *testing.T) {
			m, c := distCluster(t, p, 1000)
			defer m.Close()
			st := c.state.Load()
			const n = 100_000
			got := map[string]int{}
			eps := map[*member]bool{}
			for range n {
				mb := st.picker.pick(rand.Uint64())
				got[mb.zone]++
				eps[mb] = true
			}
			for z, share := range want {
				w := share * n
				tol := 5 * math.Sqrt(w*(1-share))
				if p == ir.LBRoundRobin {
					tol = 0
				}
				if d := math.Abs(float64(got[z]) - w); d > tol {
					t.Errorf("zone %s: %d picks of %d, want %.0f ± %.0f", z, got[z], n, w, tol)
				}
			}
			if len(eps) < 900 {
				t.Errorf("only %d of 1000 endpoints picked: the picker within a zone is not spreading", len(eps))
			}
		})
	}
}

// TestDistributeHashKeepsKey: with a hashing policy a key maps to one
// endpoint, through both the zone and the endpoint choice.
func TestDistributeHashKeepsKey(t *testing.T) {
	for _, p := range []ir.LBPolicy{ir.LBRingHash, ir.LBMaglev} {
		m, c := distCluster(t, p, 300)
		req := newReq(context.Background(), "GET", "/", nil)
		seen := map[string]bool{}
		for i := range 50 {
			req.Header.Set("X-User", "user-"+strconv.Itoa(i))
			first, _, _ := c.state.Load().choose(req)
			for range 5 {
				if mb, _, _ := c.state.Load().choose(req); mb != first {
					t.Fatalf("%s: key %d moved from %s to %s", p, i, first.ep.addr, mb.ep.addr)
				}
			}
			seen[first.zone] = true
		}
		if len(seen) != 3 {
			t.Errorf("%s: 50 keys reached zones %v, want all three", p, seen)
		}
		m.Close()
	}
}

func TestDistributionRuleChoice(t *testing.T) {
	rules := []ir.LocalityDistribution{
		{From: "*/*", To: []ir.LocalityWeight{{Locality: "*/*", Weight: 100}}},
		{From: "r1/*", To: []ir.LocalityWeight{{Locality: "r1/*", Weight: 100}}},
		{From: "*/a", To: []ir.LocalityWeight{{Locality: "*/a", Weight: 100}}},
		{From: "r1/a", To: []ir.LocalityWeight{{Locality: "r1/a", Weight: 100}}},
	}
	for _, tc := range []struct {
		region, zone string
		rules        []ir.LocalityDistribution
		want         string // the rule's single To; "" for none
	}{
		{"r1", "a", rules, "r1/a"},
		{"r2", "a", rules, "*/a"},
		{"r1", "b", rules, "r1/*"},
		{"r2", "b", rules, "*/*"},
		{"", "", rules, "*/*"},
		{"r2", "b", rules[1:], ""},
		{"r1", "a", nil, ""},
	} {
		m := NewManager(Options{Region: tc.region, Zone: tc.zone})
		d := m.distributionFor(tc.rules)
		m.Close()
		got := ""
		if d != nil {
			got = d.to[0].region + "/" + d.to[0].zone
		}
		if got != tc.want {
			t.Errorf("gateway %s/%s: rule %q, want %q", tc.region, tc.zone, got, tc.want)
		}
	}
	d := &distribution{to: []locPattern{parseLocality("*"), parseLocality("r1/*"), parseLocality("*/a"), parseLocality("r1/a")}}
	for _, tc := range []struct {
		region, zone string
		want         int
	}{{"r1", "a", 3}, {"r2", "a", 2}, {"r1", "b", 1}, {"r2", "b", 0}, {"", "", 0}} {
		if got := d.bucket(tc.region, tc.zone); got != tc.want {
			t.Errorf("endpoint %s/%s in bucket %d, want %d", tc.region, tc.zone, got, tc.want)
		}
	}
}

// TestDistributeSkipsUnhealthy runs real endpoints, two per zone: a zone
// whose endpoints fail health checks drops out and the others share its
// part in proportion; an ejected endpoint is skipped inside its zone;
// with no zone of the rule left, failover applies again.
func TestDistributeSkipsUnhealthy(t *testing.T) {
	checkLeaks(t)
	ns := newNodes(t, 6)
	ev := make(events, 100)
	ic := h1Cluster("c")
	for i, n := range ns {
		z := zoneOf[i/2]
		ic.Endpoints = append(ic.Endpoints, ir.Endpoint{Address: n.addr(), Zone: z.zone, Region: z.region})
	}
	ic.LoadBalancer = &ir.LoadBalancer{Policy: ir.LBRoundRobin, LocalityDistribute: []ir.LocalityDistribution{
		{From: "r1/a", To: []ir.LocalityWeight{{Locality: "r1/a", Weight: 60}, {Locality: "r1/b", Weight: 30}, {Locality: "r2/c", Weight: 10}}},
	}}
	ic.HealthCheck = fastCheck()
	ic.HealthCheck.HTTP = &ir.HTTPHealthCheck{Path: "/health"}
	ic.Outlier = &ir.OutlierDetection{Consecutive5xx: 1, BaseEjectionTime: ir.Duration(3600e9), MaxEjectionPercent: 100}
	zero := 0
	ic.Outlier.PanicThreshold = &zero
	m := newManager(t, Options{Region: "r1", Zone: "a", OnEndpointEvent: ev.hook}, ic)
	c := m.Cluster("c")
	byZone := func(n int) map[string]int {
		t.Helper()
		got, _ := tally(t, c, n)
		out := map[string]int{}
		for i, nd := range ns {
			if k := got[nd.addr()]; k > 0 {
				out[zoneOf[i/2].zone] += k
			}
		}
		return out
	}
	expect := func(step string, n int, want map[string]int) {
		t.Helper()
		got := byZone(n)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v", step, got, want)
		}
	}
	// Round robin over zones is exact over every 100 requests (or the
	// sum of the weights left).
	expect("all healthy", 200, map[string]int{"a": 120, "b": 60, "c": 20})

	ns[4].health.Store(503)
	ns[5].health.Store(503)
	ev.wait(t, "unhealthy "+ns[4].addr(), "unhealthy "+ns[5].addr())
	expect("zone c down: a and b share 60:30", 90, map[string]int{"a": 60, "b": 30})

	// One 5xx ejects ns[0]; zone a keeps its share on ns[1].
	ns[0].status.Store(500)
	for h := ns[0].hits.Load(); ns[0].hits.Load() == h; {
		send(t, c, nil)
	}
	ev.wait(t, "ejected "+ns[0].addr())
	before := ns[0].hits.Load()
	got, _ := tally(t, c, 90)
	if got[ns[1].addr()] != 60 || ns[0].hits.Load() != before {
		t.Errorf("with ns[0] ejected: %v (ns[0] hit %d more times), want its zone's 60 on ns[1]", got, ns[0].hits.Load()-before)
	}

	// Zones a and b gone too: no bucket is left and failover finds no
	// healthy endpoint either; with panic disabled requests fail. Heal
	// one endpoint of c: its bucket is back, with all the traffic.
	for _, i := range []int{1, 2, 3} {
		ns[i].health.Store(503)
	}
	ev.wait(t, "unhealthy "+ns[1].addr(), "unhealthy "+ns[2].addr(), "unhealthy "+ns[3].addr())
	if _, _, err := send(t, c, nil); err == nil {
		t.Error("a request succeeded with every endpoint out and panic disabled")
	}
	ns[4].health.Store(0)
	ev.wait(t, "healthy "+ns[4].addr())
	expect("only zone c back", 10, map[string]int{"c": 10})
}

func TestDistributePickAllocs(t *testing.T) {
	for _, p := range policies {
		m, c := distCluster(t, p, 1000)
		req := newReq(context.Background(), "GET", "/", nil)
		req.Header.Set("X-User", "alice")
		if n := testing.AllocsPerRun(1000, func() {
			if mb, _, _ := c.state.Load().choose(req); mb == nil {
				t.Fatal("no pick")
			}
		}); n != 0 {
			t.Errorf("%s: %.1f allocations per pick, want 0", p, n)
		}
		m.Close()
	}
}

// BenchmarkPickDistribute measures endpoint selection under a locality
// distribution: 1,000 weighted endpoints in 3 zones; zone by weight, then
// the endpoint by the policy.
func BenchmarkPickDistribute(b *testing.B) {
	for _, p := range policies {
		b.Run(string(p), func(b *testing.B) {
			m, c := distCluster(b, p, 1000)
			defer m.Close()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req := newReq(context.Background(), "GET", "/", nil)
				req.Header.Set("X-User", "alice")
				for pb.Next() {
					c.state.Load().choose(req)
				}
			})
		})
	}
}

// TestDistributeFallsBackToFailover: a rule none of whose localities has
// an endpoint leaves the cluster to failover by priority.
func TestDistributeFallsBackToFailover(t *testing.T) {
	checkLeaks(t)
	ns := newNodes(t, 2)
	ic := h1Cluster("c")
	ic.Endpoints = []ir.Endpoint{{Address: ns[0].addr(), Zone: "a", Region: "r1"}, {Address: ns[1].addr(), Zone: "b", Region: "r1"}}
	ic.LoadBalancer = &ir.LoadBalancer{LocalityDistribute: []ir.LocalityDistribution{
		{From: "r1/a", To: []ir.LocalityWeight{{Locality: "r9/*", Weight: 100}}},
	}}
	m := newManager(t, Options{Region: "r1", Zone: "a"}, ic)
	if got, _ := tally(t, m.Cluster("c"), 10); got[ns[0].addr()] != 10 {
		t.Errorf("%v, want all 10 on the gateway's own zone", got)
	}
}
