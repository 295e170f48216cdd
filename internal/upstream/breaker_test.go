package upstream

import (
	"context"
	"io"
	"sync"
	"testing"

	"causeway.dev/causeway/internal/ir"
)

// gatedRequests starts n requests against a gated node and returns their
// errors as they end.
func gatedRequests(c *Cluster, n int) chan error {
	errs := make(chan error, n)
	for range n {
		go func() {
			resp, err := c.RoundTrip(newReq(context.Background(), "GET", "/", nil))
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			errs <- err
		}()
	}
	return errs
}

func TestCircuitBreakerMaxRequests(t *testing.T) {
	checkLeaks(t)
	ns := newNodes(t, 1)
	gate := make(chan struct{})
	ns[0].gate.Store(&gate)
	ic := cluster("c", ir.LBRoundRobin, ns)
	ic.CircuitBreaker = &ir.CircuitBreaker{MaxRequests: 5}
	m := newManager(t, Options{}, ic)
	errs := gatedRequests(m.Cluster("c"), 20)
	for range 15 {
		if err := <-errs; !isOverflow(err) {
			t.Fatalf("err %v, want ErrOverflow", err)
		}
	}
	for range 5 {
		<-ns[0].entered
	}
	if got := ns[0].inflight.Load(); got != 5 {
		t.Errorf("%d requests at the backend, want 5", got)
	}
	close(gate)
	for range 5 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if h, p := ns[0].hits.Load(), ns[0].peak.Load(); h != 5 || p != 5 {
		t.Errorf("backend saw %d requests, %d at once; want 5, 5", h, p)
	}
	// Released: the next request goes through.
	ns[0].gate.Store(nil)
	if _, _, err := send(t, m.Cluster("c"), nil); err != nil {
		t.Error(err)
	}
}

func TestCircuitBreakerConnectionsAndPending(t *testing.T) {
	checkLeaks(t)
	ns := newNodes(t, 1)
	gate := make(chan struct{})
	ns[0].gate.Store(&gate)
	ic := cluster("c", ir.LBRoundRobin, ns)
	ic.CircuitBreaker = &ir.CircuitBreaker{MaxConnections: 2, MaxPendingRequests: 3}
	m := newManager(t, Options{}, ic)
	c := m.Cluster("c")
	errs := gatedRequests(c, 10)
	for range 5 { // 2 connected, 3 waiting, 5 refused
		if err := <-errs; !isOverflow(err) {
			t.Fatalf("err %v, want ErrOverflow", err)
		}
	}
	<-ns[0].entered
	<-ns[0].entered
	if p := c.state.Load().breaker.pending.Load(); p != 3 {
		t.Errorf("%d pending, want 3", p)
	}
	close(gate)
	for range 5 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if h, p := ns[0].hits.Load(), ns[0].peak.Load(); h != 5 || p != 2 {
		t.Errorf("backend saw %d requests, %d at once; want 5, 2", h, p)
	}
	// A pending request gives up with its context.
	gate2 := make(chan struct{})
	ns[0].gate.Store(&gate2)
	held := gatedRequests(c, 2)
	<-ns[0].entered
	<-ns[0].entered
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := c.RoundTrip(newReq(ctx, "GET", "/", nil)); done <- err }()
	cancel()
	if err := <-done; err == nil || isOverflow(err) {
		t.Errorf("cancelled pending request: %v", err)
	}
	close(gate2)
	<-held
	<-held
}

func TestAcquireRetry(t *testing.T) {
	ic := h1Cluster("c", "127.0.0.1:1")
	ic.CircuitBreaker = &ir.CircuitBreaker{MaxRetries: 2}
	m := newManager(t, Options{}, ic, h1Cluster("free", "127.0.0.1:1"))
	c := m.Cluster("c")
	r1, ok1 := c.AcquireRetry()
	_, ok2 := c.AcquireRetry()
	_, ok3 := c.AcquireRetry()
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("acquired %v %v %v, want true true false", ok1, ok2, ok3)
	}
	r1()
	if _, ok := c.AcquireRetry(); !ok {
		t.Error("a released retry was not available again")
	}
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if r, ok := m.Cluster("free").AcquireRetry(); !ok {
				t.Error("unlimited retries refused")
			} else {
				r()
			}
		})
	}
	wg.Wait()
	if n := testing.AllocsPerRun(100, func() { r, _ := c.AcquireRetry(); r() }); n != 0 {
		t.Errorf("AcquireRetry: %.0f allocations", n)
	}
}
