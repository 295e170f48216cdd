package upstream

import (
	"context"
	"errors"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
)

func TestOutlierEjectsAndReturns(t *testing.T) {
	checkLeaks(t)
	ns := newNodes(t, 3)
	bad := ns[0]
	bad.status.Store(503)
	ev := make(events, 100)
	ic := cluster("c", ir.LBRoundRobin, ns)
	ic.Outlier = &ir.OutlierDetection{ConsecutiveGatewayErrors: 3, BaseEjectionTime: ms(300), MaxEjectionPercent: 50}
	m := newManager(t, Options{OnEndpointEvent: ev.hook}, ic)
	c := m.Cluster("c")
	_, statuses := tally(t, c, 9) // round robin: the bad endpoint answers its third 503
	if statuses[503] != 3 {
		t.Fatalf("statuses %v", statuses)
	}
	ev.wait(t, "ejected "+bad.addr())
	ejectedAt := time.Now()
	byEP, statuses := tally(t, c, 20)
	if byEP[bad.addr()] != 0 || statuses[503] != 0 {
		t.Fatalf("ejected endpoint still served: %v %v", byEP, statuses)
	}
	ev.wait(t, "returned "+bad.addr())
	if d := time.Since(ejectedAt); d < 250*time.Millisecond {
		t.Errorf("returned after %v, want the 300ms ejection time", d)
	}
	if byEP, _ := tally(t, c, 3); byEP[bad.addr()] != 1 {
		t.Fatalf("returned endpoint not served: %v", byEP)
	}
	// Still failing: the second ejection lasts twice as long.
	tally(t, c, 6)
	ev.wait(t, "ejected "+bad.addr())
	c.mu.Lock()
	var d time.Duration
	for _, mb := range c.members {
		if mb.ejected {
			d = time.Until(mb.until)
		}
	}
	c.mu.Unlock()
	if d < 450*time.Millisecond || d > 600*time.Millisecond {
		t.Errorf("second ejection ends in %v, want about 600ms", d)
	}
}

func TestOutlierMaxEjectionPercent(t *testing.T) {
	checkLeaks(t)
	ns := newNodes(t, 4)
	for _, n := range ns[:3] {
		n.status.Store(500)
	}
	ev := make(events, 100)
	ic := cluster("c", ir.LBRoundRobin, ns)
	ic.Outlier = &ir.OutlierDetection{Consecutive5xx: 2, BaseEjectionTime: ir.Duration(time.Minute), MaxEjectionPercent: 50}
	m := newManager(t, Options{OnEndpointEvent: ev.hook}, ic)
	tally(t, m.Cluster("c"), 40)
	ejected := 0
	for _, mb := range m.Cluster("c").state.Load().members {
		m.Cluster("c").mu.Lock()
		if mb.ejected {
			ejected++
		}
		m.Cluster("c").mu.Unlock()
	}
	if ejected != 2 {
		t.Errorf("%d of 4 endpoints ejected, want 2 (50%%)", ejected)
	}
	// One endpoint of three with the default 10%: at least one may go.
	ic3 := cluster("d", ir.LBRoundRobin, ns[:3])
	ic3.Outlier = &ir.OutlierDetection{Consecutive5xx: 2, BaseEjectionTime: ir.Duration(time.Minute)}
	m.Update([]*ir.Cluster{ic, ic3})
	tally(t, m.Cluster("d"), 30)
	if n := len(m.Cluster("d").state.Load().picker.(*roundRobin).ms); n != 2 {
		t.Errorf("%d of 3 endpoints serve, want 2", n)
	}
}

func TestOutlierPanic(t *testing.T) {
	checkLeaks(t)
	ns := newNodes(t, 2)
	for _, n := range ns {
		n.status.Store(502)
	}
	for _, panicPct := range []int{50, 0} {
		ev := make(events, 100)
		ic := cluster("c", ir.LBRoundRobin, ns)
		p := panicPct
		ic.Outlier = &ir.OutlierDetection{ConsecutiveGatewayErrors: 1, BaseEjectionTime: ir.Duration(time.Minute), MaxEjectionPercent: 100, PanicThreshold: &p}
		m := newManager(t, Options{OnEndpointEvent: ev.hook}, ic)
		c := m.Cluster("c")
		send(t, c, nil)
		send(t, c, nil)
		ev.wait(t, "ejected "+ns[0].addr(), "ejected "+ns[1].addr())
		_, _, err := send(t, c, nil)
		if panicPct > 0 {
			// Everything ejected: below the threshold all endpoints serve.
			if err != nil || !c.state.Load().panic {
				t.Errorf("panic mode: err %v, panic %v", err, c.state.Load().panic)
			}
		} else if !errors.Is(err, ErrNoEndpoint) {
			t.Errorf("panic disabled: err %v, want ErrNoEndpoint", err)
		}
		m.Close()
	}
}

func TestOutlierLocalOrigin(t *testing.T) {
	checkLeaks(t)
	ns := newNodes(t, 1)
	dead := refusedAddr(t)
	ev := make(events, 100)
	ic := h1Cluster("c", dead, ns[0].addr())
	ic.Outlier = &ir.OutlierDetection{ConsecutiveLocalOriginFailures: 2, BaseEjectionTime: ir.Duration(time.Minute), MaxEjectionPercent: 50}
	m := newManager(t, Options{OnEndpointEvent: ev.hook}, ic)
	for range 4 { // each connect failure falls over to the live endpoint
		if _, st, err := send(t, m.Cluster("c"), nil); err != nil || st != 200 {
			t.Fatal(st, err)
		}
	}
	ev.wait(t, "ejected "+dead)
	// A client that gives up is not the endpoint's fault.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if localFailure(func() error { _, err := m.Cluster("c").RoundTrip(newReq(ctx, "GET", "/", nil)); return err }()) {
		t.Error("a cancelled request counts as an endpoint failure")
	}
}
