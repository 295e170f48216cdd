package upstream

import (
	"testing"

	"causeway.dev/causeway/internal/ir"
)

func TestLocalityFailover(t *testing.T) {
	checkLeaks(t)
	ns := newNodes(t, 4)
	a1, a2, b1, c1 := ns[0], ns[1], ns[2], ns[3]
	ev := make(events, 100)
	ic := h1Cluster("c")
	ic.Endpoints = []ir.Endpoint{
		{Address: a1.addr(), Zone: "a", Region: "r1"},
		{Address: a2.addr(), Zone: "a", Region: "r1"},
		{Address: b1.addr(), Zone: "b", Region: "r1"},
		{Address: c1.addr(), Zone: "c", Region: "r2"},
	}
	ic.HealthCheck = fastCheck()
	ic.HealthCheck.HTTP = &ir.HTTPHealthCheck{Path: "/health"}
	m := newManager(t, Options{Zone: "a", Region: "r1", OnEndpointEvent: ev.hook}, ic)
	c := m.Cluster("c")
	expect := func(step string, want ...*node) {
		t.Helper()
		got, _ := tally(t, c, 12)
		total := 0
		for _, n := range want {
			if got[n.addr()] == 0 {
				t.Errorf("%s: %s got nothing: %v", step, n.addr(), got)
			}
			total += got[n.addr()]
		}
		if total != 12 {
			t.Errorf("%s: traffic outside the expected endpoints: %v", step, got)
		}
	}
	expect("all healthy: own zone", a1, a2)

	a2.health.Store(503) // zone a at 50% < 70%: the region takes over
	ev.wait(t, "unhealthy "+a2.addr())
	expect("zone degraded: region", b1)

	b1.health.Store(503) // region's other zone gone too: anywhere
	ev.wait(t, "unhealthy "+b1.addr())
	expect("region degraded: anywhere", c1)

	c1.health.Store(503) // 1 of 4 healthy, below the 50% panic threshold: all
	ev.wait(t, "unhealthy "+c1.addr())
	if !c.state.Load().panic {
		t.Error("no panic mode with 25% healthy")
	}
	expect("panic: all", a1, a2, b1, c1)

	for _, n := range []*node{a2, b1, c1} {
		n.health.Store(0)
		ev.wait(t, "healthy "+n.addr())
	}
	expect("healed: own zone again", a1, a2)
}

func TestLocalityNoneConfigured(t *testing.T) {
	m := NewManager(Options{})
	defer m.Close()
	if p := m.priority("a", "r1"); p != 0 {
		t.Errorf("priority %d without a locality of our own", p)
	}
	m2 := NewManager(Options{Region: "r1"})
	defer m2.Close()
	if p1, p2 := m2.priority("x", "r1"), m2.priority("x", "r2"); p1 != 1 || p2 != 2 {
		t.Errorf("region-only priorities %d %d, want 1 2", p1, p2)
	}
}
