//go:build kubeapi

package kube

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"causeway.dev/causeway/internal/leader"
	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/translate"
)

// replica is one `causeway controller` as wired in cmd/causeway: a
// provider feeding a status writer that runs only while its elector leads.
// Its requests pass a transport that can cut it off the API server and
// that counts status writes, and those sent while it was not leading.
type replica struct {
	name        string
	el          *leader.Elector
	cancel      context.CancelFunc
	done        chan error // Run's result
	partitioned atomic.Bool
	leading     atomic.Bool // inside the elector's lead callback
	writes      atomic.Int32
	strayWrites atomic.Int32
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func startReplica(t *testing.T, srv *apiServer, name string, lc leader.Config) *replica {
	t.Helper()
	r := &replica{name: name, done: make(chan error, 1)}
	cfg := rest.CopyConfig(srv.cfg)
	cfg.UserAgent = name
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if r.partitioned.Load() {
				return nil, errors.New("partitioned")
			}
			if req.Method == http.MethodPut && strings.HasSuffix(req.URL.Path, "/status") {
				r.writes.Add(1)
				if !r.leading.Load() {
					r.strayWrites.Add(1)
				}
			}
			return rt.RoundTrip(req)
		})
	}
	prov, err := New(Options{Config: srv.cfg})
	if err != nil {
		t.Fatal(err)
	}
	sw, err := NewStatusWriter(StatusOptions{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	lc.Config, lc.Identity = cfg, name
	if r.el, err = leader.New(lc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	t.Cleanup(cancel)
	addrs := func(*gwv1.Gateway) []string { return []string{"127.0.2.9"} }
	go func() {
		_ = prov.Run(ctx, func(s *resource.Snapshot) {
			_, rep := translate.Translate(s, translate.Options{Addresses: addrs})
			sw.Update(s, rep, addrs)
		})
	}()
	go func() {
		r.done <- r.el.Run(ctx, func(ctx context.Context) {
			r.leading.Store(true)
			defer r.leading.Store(false)
			_ = sw.Run(ctx)
		})
	}()
	return r
}

// TestLeaderElection runs two replicas: one leads and alone writes status;
// cut off from the API server, it steps down and the other takes over
// after the lease duration; stopped, the new leader releases the Lease and
// the first takes over at once. At no time do both lead, and no replica
// writes status outside its leadership.
func TestLeaderElection(t *testing.T) {
	srv := startAPIServer(t)
	ctx := context.Background()
	gwc := gwclient.NewForConfigOrDie(srv.cfg)
	_, err := gwc.GatewayV1().GatewayClasses().Create(ctx, &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "ours"},
		Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}}, createOpts)
	if err != nil {
		t.Fatal(err)
	}
	listener := func(name string, port gwv1.PortNumber) gwv1.Listener {
		return gwv1.Listener{Name: gwv1.SectionName(name), Port: port, Protocol: gwv1.HTTPProtocolType}
	}
	_, err = gwc.GatewayV1().Gateways("default").Create(ctx, &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"},
		Spec: gwv1.GatewaySpec{GatewayClassName: "ours", Listeners: []gwv1.Listener{listener("a", 80)}}}, createOpts)
	if err != nil {
		t.Fatal(err)
	}
	addListener := func(name string, port gwv1.PortNumber) {
		t.Helper()
		g, err := gwc.GatewayV1().Gateways("default").Get(ctx, "gw", getOpts)
		if err != nil {
			t.Fatal(err)
		}
		g.Spec.Listeners = append(g.Spec.Listeners, listener(name, port))
		if _, err := gwc.GatewayV1().Gateways("default").Update(ctx, g, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	listenersInStatus := func(n int) func() error {
		return func() error {
			g, err := gwc.GatewayV1().Gateways("default").Get(ctx, "gw", getOpts)
			if err != nil {
				return err
			}
			if len(g.Status.Listeners) != n {
				return errors.New("listener statuses not written yet")
			}
			return wantConds(g.Status.Conditions, g.Generation, "Accepted", "Programmed")
		}
	}

	lc := leader.Config{Namespace: "default", Name: "causeway-test", LeaseDuration: 5 * time.Second,
		RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond}
	a, b := startReplica(t, srv, "replica-a", lc), startReplica(t, srv, "replica-b", lc)

	// Both leading at once is what the election exists to prevent.
	var overlap atomic.Bool
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopWatch:
				return
			case <-tick.C:
				if a.leading.Load() && b.leading.Load() {
					overlap.Store(true)
				}
			}
		}
	}()

	var first, second *replica
	waitFor(t, "a leader", 30*time.Second, func() error {
		switch {
		case a.el.IsLeader():
			first, second = a, b
		case b.el.IsLeader():
			first, second = b, a
		default:
			return errors.New("no leader")
		}
		return nil
	})
	waitFor(t, "Gateway status from the first leader", 30*time.Second, listenersInStatus(1))
	if first.writes.Load() == 0 || second.writes.Load() != 0 {
		t.Fatalf("status writes: leader %s %d, follower %s %d; want some and none",
			first.name, first.writes.Load(), second.name, second.writes.Load())
	}

	// Cut the leader off: it must step down by itself (its renew deadline)
	// and the follower take over once the Lease has gone unrenewed for
	// its duration.
	first.partitioned.Store(true)
	start := time.Now()
	waitFor(t, "takeover after a partition", lc.LeaseDuration+lc.RenewDeadline+5*time.Second, func() error {
		if !second.el.IsLeader() {
			return errors.New("follower not leading")
		}
		return nil
	})
	t.Logf("takeover after the leader was cut off: %v", time.Since(start).Round(time.Millisecond))
	if first.el.IsLeader() {
		t.Fatal("the cut-off leader still thinks it leads")
	}
	addListener("b", 81)
	waitFor(t, "Gateway status from the second leader", 30*time.Second, listenersInStatus(2))
	if second.writes.Load() == 0 {
		t.Fatal("the new leader wrote no status")
	}

	// Heal the first, then stop the second: it releases the Lease, and the
	// first takes over well within the lease duration.
	first.partitioned.Store(false)
	second.cancel()
	start = time.Now()
	select {
	case err := <-second.done:
		if err != nil {
			t.Fatalf("stopped leader: %v", err)
		}
	case <-time.After(lc.RenewDeadline + 5*time.Second):
		t.Fatal("stopped leader's Run did not return")
	}
	waitFor(t, "takeover after a release", lc.LeaseDuration, func() error {
		if !first.el.IsLeader() {
			return errors.New("first replica not leading")
		}
		return nil
	})
	t.Logf("takeover after the leader released: %v", time.Since(start).Round(time.Millisecond))
	stoppedWrites := second.writes.Load()
	addListener("c", 82)
	waitFor(t, "Gateway status from the leader again", 30*time.Second, listenersInStatus(3))

	leaseGVR := schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}
	lease, err := dynamic.NewForConfigOrDie(srv.cfg).Resource(leaseGVR).Namespace("default").Get(ctx, lc.Name, getOpts)
	if err != nil {
		t.Fatal(err)
	}
	holder, _, _ := unstructured.NestedString(lease.Object, "spec", "holderIdentity")
	transitions, _, _ := unstructured.NestedInt64(lease.Object, "spec", "leaseTransitions")
	if holder != first.name || transitions < 2 {
		t.Errorf("lease holder %q after %d transitions; want %s after at least 2", holder, transitions, first.name)
	}
	if overlap.Load() {
		t.Error("both replicas led at the same time")
	}
	for _, r := range []*replica{a, b} {
		if n := r.strayWrites.Load(); n != 0 {
			t.Errorf("%s wrote status %d times while not leading", r.name, n)
		}
	}
	if n := second.writes.Load(); n != stoppedWrites {
		t.Errorf("stopped replica wrote %d statuses after it stopped", n-stoppedWrites)
	}
}
