package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
)

// node is a loopback backend whose behaviour a test steers: the status of
// its /health answer and of other requests, a delay, and a gate that holds
// requests. It answers its own address.
type node struct {
	*backend
	status   atomic.Int32 // for requests; 0 means 200
	health   atomic.Int32 // for /health; 0 means 200
	delay    atomic.Int64 // nanoseconds
	hits     atomic.Int64 // requests other than /health
	inflight atomic.Int64
	peak     atomic.Int64
	gate     atomic.Pointer[chan struct{}] // requests wait for it to close, when set
	entered  chan struct{}                 // one value per request, when gated
}

func newNodes(t *testing.T, n int) []*node {
	t.Helper()
	ns := make([]*node, n)
	for i := range ns {
		nd := &node{entered: make(chan struct{}, 1024)}
		nd.backend = newBackend(t, http.HandlerFunc(nd.serve))
		ns[i] = nd
	}
	return ns
}

func (nd *node) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" {
		if s := nd.health.Load(); s != 0 {
			w.WriteHeader(int(s))
		}
		return
	}
	nd.hits.Add(1)
	n := nd.inflight.Add(1)
	defer nd.inflight.Add(-1)
	for {
		p := nd.peak.Load()
		if n <= p || nd.peak.CompareAndSwap(p, n) {
			break
		}
	}
	if g := nd.gate.Load(); g != nil {
		nd.entered <- struct{}{}
		select {
		case <-*g:
		case <-r.Context().Done():
		}
	}
	if d := nd.delay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	if s := nd.status.Load(); s != 0 {
		w.WriteHeader(int(s))
	}
	io.WriteString(w, nd.addr())
}

func addrs(ns []*node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.addr()
	}
	return out
}

// events collects Options.OnEndpointEvent calls.
type events chan string

func (ev events) hook(_, endpoint, event string) {
	select {
	case ev <- event + " " + endpoint:
	default:
		panic("event buffer full")
	}
}

// wait reads events until every one of want ("ejected 127.0.0.1:1234")
// has arrived, in any order.
func (ev events) wait(t *testing.T, want ...string) {
	t.Helper()
	missing := map[string]bool{}
	for _, w := range want {
		missing[w] = true
	}
	timeout := time.After(10 * time.Second)
	for len(missing) > 0 {
		select {
		case got := <-ev:
			delete(missing, got)
		case <-timeout:
			t.Fatalf("no events %v", missing)
		}
	}
}

// send makes one GET and returns the answering endpoint (checked against
// the body) and status.
func send(t *testing.T, c *Cluster, req *http.Request) (string, int, error) {
	t.Helper()
	if req == nil {
		req = newReq(context.Background(), "GET", "/", nil)
	}
	resp, err := c.RoundTrip(req)
	if err != nil {
		return "", 0, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	ep := EndpointOf(resp)
	if string(b) != ep {
		t.Fatalf("EndpointOf = %q, body says %q", ep, b)
	}
	return ep, resp.StatusCode, nil
}

// tally sends n requests and counts them by endpoint and status.
func tally(t *testing.T, c *Cluster, n int) (byEP map[string]int, byStatus map[int]int) {
	t.Helper()
	byEP, byStatus = map[string]int{}, map[int]int{}
	for range n {
		ep, st, err := send(t, c, nil)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		byEP[ep]++
		byStatus[st]++
	}
	return byEP, byStatus
}

func cluster(name string, lb ir.LBPolicy, ns []*node) *ir.Cluster {
	c := h1Cluster(name, addrs(ns)...)
	c.LoadBalancer = &ir.LoadBalancer{Policy: lb}
	return c
}

func ms(n int) ir.Duration { return ir.Duration(time.Duration(n) * time.Millisecond) }

func isOverflow(err error) bool { return errors.Is(err, ErrOverflow) }
