package upstream

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
)

func TestWeightedRoundRobin(t *testing.T) {
	checkLeaks(t)
	ns := newNodes(t, 3)
	ic := cluster("c", ir.LBRoundRobin, ns)
	for i := range ic.Endpoints {
		ic.Endpoints[i].Weight = int32(i + 1)
	}
	m := newManager(t, Options{}, ic)
	got, _ := tally(t, m.Cluster("c"), 600)
	// Round robin is exact over whole cycles of the total weight.
	for i, n := range ns {
		if want := 100 * (i + 1); got[n.addr()] != want {
			t.Errorf("endpoint %d (weight %d): %d requests, want %d", i, i+1, got[n.addr()], want)
		}
	}
}

func TestWeightedRandom(t *testing.T) {
	checkLeaks(t)
	ns := newNodes(t, 3)
	ic := cluster("c", ir.LBRandom, ns)
	for i := range ic.Endpoints {
		ic.Endpoints[i].Weight = int32(i + 1)
	}
	m := newManager(t, Options{}, ic)
	const total = 3000
	got, _ := tally(t, m.Cluster("c"), total)
	for i, n := range ns {
		want := float64(total) * float64(i+1) / 6
		sd := math.Sqrt(want * (1 - float64(i+1)/6))
		if d := math.Abs(float64(got[n.addr()]) - want); d > 5*sd { // 5 sigma: flakes once in millions
			t.Errorf("endpoint %d: %d requests, want %.0f ± %.0f", i, got[n.addr()], want, 5*sd)
		}
	}
}

// Least request sends less to a slow endpoint than round robin, which
// gives it exactly its third.
func TestLeastRequestAvoidsSlowEndpoint(t *testing.T) {
	checkLeaks(t)
	share := func(policy ir.LBPolicy) float64 {
		ns := newNodes(t, 3)
		ns[0].delay.Store(int64(20 * time.Millisecond))
		m := newManager(t, Options{}, cluster("c", policy, ns))
		c := m.Cluster("c")
		const workers, each = 8, 30
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range each {
					if _, _, err := send(t, c, nil); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return float64(ns[0].hits.Load()) / (workers * each)
	}
	rr, lr := share(ir.LBRoundRobin), share(ir.LBLeastRequest)
	t.Logf("slow endpoint's share: round robin %.2f, least request %.2f", rr, lr)
	if lr >= rr || lr > 0.2 {
		t.Errorf("least request gave the slow endpoint %.2f of the requests, round robin %.2f", lr, rr)
	}
}

// hashKeys maps 10,000 keys to endpoints through the cluster's snapshot.
func hashKeys(t *testing.T, c *Cluster) []string {
	t.Helper()
	st := c.state.Load()
	out := make([]string, 10000)
	req := newReq(context.Background(), "GET", "/", nil)
	for i := range out {
		req.Header.Set("X-User", "user-"+strconv.Itoa(i))
		mb, _, _ := st.choose(req)
		out[i] = mb.ep.addr
	}
	return out
}

func TestConsistentHashRemap(t *testing.T) {
	for _, policy := range []ir.LBPolicy{ir.LBRingHash, ir.LBMaglev} {
		t.Run(string(policy), func(t *testing.T) {
			const n = 10
			mk := func(k int) *ir.Cluster {
				c := &ir.Cluster{Name: "c", LoadBalancer: &ir.LoadBalancer{Policy: policy, HashOn: []ir.HashKey{{Header: "x-user"}}}}
				for i := range k {
					c.Endpoints = append(c.Endpoints, ir.Endpoint{Address: fmt.Sprintf("127.0.0.1:%d", 20000+i)})
				}
				return c
			}
			m := newManager(t, Options{}, mk(n))
			before := hashKeys(t, m.Cluster("c"))
			if again := hashKeys(t, m.Cluster("c")); fmt.Sprint(again) != fmt.Sprint(before) {
				t.Fatal("the same keys mapped differently")
			}
			load := map[string]int{}
			for _, a := range before {
				load[a]++
			}
			for a, k := range load { // each endpoint near 1/n of the keys
				if k < 1000/2 || k > 1000*3/2 {
					t.Errorf("%s has %d of 10000 keys", a, k)
				}
			}
			m.Update([]*ir.Cluster{mk(n + 1)})
			after := hashKeys(t, m.Cluster("c"))
			added := fmt.Sprintf("127.0.0.1:%d", 20000+n)
			moved, toNew := 0, 0
			for i := range before {
				if before[i] != after[i] {
					moved++
					if after[i] == added {
						toNew++
					}
				}
			}
			frac, ideal := float64(moved)/10000, 1.0/(n+1)
			t.Logf("%s: %.2f%% of keys moved (ideal %.2f%%), %d of %d to the new endpoint", policy, 100*frac, 100*ideal, toNew, moved)
			if frac < ideal*0.5 || frac > ideal*1.6 {
				t.Errorf("%.2f%% of keys moved, want about %.2f%%", 100*frac, 100*ideal)
			}
			if policy == ir.LBRingHash && toNew != moved || float64(toNew) < 0.9*float64(moved) {
				t.Errorf("only %d of %d moved keys went to the new endpoint", toNew, moved)
			}
		})
	}
}

func TestHashKeys(t *testing.T) {
	checkLeaks(t)
	ns := newNodes(t, 5)
	for _, policy := range []ir.LBPolicy{ir.LBRingHash, ir.LBMaglev} {
		t.Run(string(policy), func(t *testing.T) {
			ic := cluster("c", policy, ns)
			ic.LoadBalancer.HashOn = []ir.HashKey{
				{Header: "x-user"},
				{QueryParam: "session"},
				{Cookie: &ir.HashCookie{Name: "lb", TTL: ir.Duration(time.Hour), Path: "/"}},
			}
			m := newManager(t, Options{}, ic)
			c := m.Cluster("c")
			sticky := func(name string, mk func(i int) *http.Request) {
				t.Helper()
				seen := map[string]bool{}
				for i := range 20 {
					first := ""
					for range 3 {
						ep, _, err := send(t, c, mk(i))
						if err != nil {
							t.Fatal(err)
						}
						if first != "" && ep != first {
							t.Fatalf("%s %d: went to %s then %s", name, i, first, ep)
						}
						first = ep
					}
					seen[first] = true
				}
				if len(seen) < 2 {
					t.Errorf("%s: 20 keys all went to one endpoint", name)
				}
			}
			sticky("header", func(i int) *http.Request {
				r := newReq(context.Background(), "GET", "/?session=same", nil)
				r.Header.Set("X-User", strconv.Itoa(i))
				return r
			})
			sticky("query", func(i int) *http.Request {
				return newReq(context.Background(), "GET", "/?a=b&session="+strconv.Itoa(i), nil)
			})

			// Without a cookie, one is set; sent back, it sticks.
			resp, err := c.RoundTrip(newReq(context.Background(), "GET", "/", nil))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cks := resp.Cookies()
			if len(cks) != 1 || cks[0].Name != "lb" || cks[0].MaxAge != 3600 || cks[0].Path != "/" || !cks[0].HttpOnly {
				t.Fatalf("Set-Cookie %q", resp.Header["Set-Cookie"])
			}
			first := EndpointOf(resp)
			for range 10 {
				r := newReq(context.Background(), "GET", "/", nil)
				r.Header.Set("Cookie", "other=1; lb="+cks[0].Value)
				resp, err := c.RoundTrip(r)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if EndpointOf(resp) != first || resp.Header.Get("Set-Cookie") != "" {
					t.Fatalf("cookie request went to %s (first %s), Set-Cookie %q", EndpointOf(resp), first, resp.Header.Get("Set-Cookie"))
				}
			}
		})
	}
	t.Run("source IP", func(t *testing.T) {
		ic := cluster("c", ir.LBMaglev, ns)
		ic.LoadBalancer.HashOn = []ir.HashKey{{SourceIP: true}}
		m := newManager(t, Options{}, ic)
		st := m.Cluster("c").state.Load()
		r := newReq(context.Background(), "GET", "/", nil)
		r.RemoteAddr = "[2001:db8::1]:1234"
		a, _, _ := st.choose(r)
		r.RemoteAddr = "[2001:db8::1]:5678"
		b, _, _ := st.choose(r)
		if a != b {
			t.Error("the same source IP from another port went elsewhere")
		}
	})
}

func TestSlowStart(t *testing.T) {
	checkLeaks(t)
	ns := newNodes(t, 3)
	ic := cluster("c", ir.LBRoundRobin, ns[:2])
	ic.LoadBalancer.SlowStart = ms(600)
	m := newManager(t, Options{}, ic)
	c := m.Cluster("c")
	// share of the new endpoint in one round-robin cycle of the snapshot
	share := func() float64 {
		st := c.state.Load()
		rr := st.picker.(*roundRobin)
		n := 0
		for range rr.total {
			if rr.pick(0).ep.addr == ns[2].addr() {
				n++
			}
		}
		return float64(n) / float64(rr.total)
	}
	if s := share(); s != 0 {
		t.Fatalf("share %.2f before the endpoint exists", s)
	}
	ic2 := cluster("c", ir.LBRoundRobin, ns)
	ic2.LoadBalancer.SlowStart = ms(600)
	m.Update([]*ir.Cluster{ic2})
	// The endpoint starts at 10% of its weight: 0.1/2.1 of the traffic.
	if s := share(); s < 0.04 || s > 0.08 {
		t.Fatalf("share right after joining %.3f, want about 0.048", s)
	}
	last, steps := 0.0, 0
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := share()
		if s < last-1e-9 {
			t.Fatalf("share fell from %.3f to %.3f during slow start", last, s)
		}
		if s != last {
			steps++
		}
		last = s
		if math.Abs(s-1.0/3) < 1e-9 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("share %.3f after the slow-start window", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if steps < 3 {
		t.Errorf("weight reached full in %d steps, want a ramp", steps)
	}
	// And the old endpoints were not slowed: they joined with the cluster.
	if s := c.state.Load(); len(s.members) != 3 || !s.members[0].rampFrom.IsZero() {
		t.Error("initial endpoints were put in slow start")
	}
}

// pickCluster builds a cluster of 1,000 endpoints (never dialled) for
// selection benchmarks.
func pickCluster(tb testing.TB, policy ir.LBPolicy) (*Manager, *Cluster) {
	ic := &ir.Cluster{Name: "c", LoadBalancer: &ir.LoadBalancer{Policy: policy, HashOn: []ir.HashKey{{Header: "x-user"}}}}
	for i := range 1000 {
		ic.Endpoints = append(ic.Endpoints, ir.Endpoint{Address: fmt.Sprintf("127.0.%d.%d:80", i/250, i%250+1), Weight: int32(1 + i%3)})
	}
	m := NewManager(Options{})
	m.Update([]*ir.Cluster{ic})
	return m, m.Cluster("c")
}

var policies = []ir.LBPolicy{ir.LBRoundRobin, ir.LBRandom, ir.LBLeastRequest, ir.LBRingHash, ir.LBMaglev}

func TestPickAllocs(t *testing.T) {
	for _, p := range policies {
		m, c := pickCluster(t, p)
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

// BenchmarkPick measures endpoint selection over 1,000 weighted
// endpoints: snapshot load, hash key (a header) and pick.
func BenchmarkPick(b *testing.B) {
	for _, p := range policies {
		b.Run(string(p), func(b *testing.B) {
			m, c := pickCluster(b, p)
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
