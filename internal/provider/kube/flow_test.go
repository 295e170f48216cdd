//go:build kubeapi

package kube

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/translate"
)

var (
	createOpts = metav1.CreateOptions{}
	getOpts    = metav1.GetOptions{}
)

func ptr[T any](v T) *T { return &v }

// flow is the controller's Kubernetes path under test: the provider and the
// status writer run against a fresh apiserver until stop, translating what
// the typed clients create there.
type flow struct {
	ctx  context.Context
	core kubernetes.Interface
	gwc  gwclient.Interface
	// stop cancels ctx and checks that both Run calls returned nil.
	stop func()
}

// startFlow starts an apiserver, the provider and the writer. addrs gives
// the Gateways' addresses (nil: none); written, if not nil, is the
// writer's test hook, called once a report has been written.
func startFlow(t *testing.T, addrs func(*gwv1.Gateway) []string, written func(*resource.Snapshot)) *flow {
	t.Helper()
	srv := startAPIServer(t)
	prov, err := New(Options{Config: srv.cfg})
	if err != nil {
		t.Fatal(err)
	}
	sw, err := NewStatusWriter(StatusOptions{Config: srv.cfg})
	if err != nil {
		t.Fatal(err)
	}
	sw.written = written
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 2)
	go func() { done <- sw.Run(ctx) }()
	go func() {
		done <- prov.Run(ctx, func(s *resource.Snapshot) {
			_, rep := translate.Translate(s, translate.Options{Addresses: addrs})
			sw.Update(s, rep, addrs)
		})
	}()
	return &flow{ctx: ctx, core: kubernetes.NewForConfigOrDie(srv.cfg), gwc: gwclient.NewForConfigOrDie(srv.cfg), stop: func() {
		t.Helper()
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}}
}

// mustCreate fails the test if creating what failed.
func mustCreate(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("creating %s: %v", what, err)
	}
}

// TestProviderAndStatusWriter runs the provider and the writer against a
// real apiserver: resources created there reach a snapshot, the report of
// its translation reaches the objects' status with their generation, a
// spec change is observed, and a change that alters no status writes none.
func TestProviderAndStatusWriter(t *testing.T) {
	var mu sync.Mutex
	var lastWritten *resource.Snapshot
	f := startFlow(t, func(*gwv1.Gateway) []string { return []string{"127.0.2.9"} }, func(s *resource.Snapshot) {
		mu.Lock()
		lastWritten = s
		mu.Unlock()
	})
	ctx, core, gwc := f.ctx, f.core, f.gwc

	_, err := gwc.GatewayV1().GatewayClasses().Create(ctx, &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "ours"},
		Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}}, createOpts)
	mustCreate(t, "GatewayClass ours", err)
	_, err = gwc.GatewayV1().GatewayClasses().Create(ctx, &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "theirs"},
		Spec: gwv1.GatewayClassSpec{ControllerName: "example.com/other"}}, createOpts)
	mustCreate(t, "GatewayClass theirs", err)
	_, err = core.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}}, createOpts)
	mustCreate(t, "Service", err)
	_, err = core.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "svc-1", Labels: map[string]string{discoveryv1.LabelServiceName: "svc"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.2.3"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(18080))}},
	}, createOpts)
	mustCreate(t, "EndpointSlice", err)
	_, err = gwc.GatewayV1().Gateways("default").Create(ctx, &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"},
		Spec: gwv1.GatewaySpec{GatewayClassName: "ours", Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}}}, createOpts)
	mustCreate(t, "Gateway", err)
	route := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "r"}, Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}},
		Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
			BackendObjectReference: gwv1.BackendObjectReference{Name: "svc", Port: ptr(gwv1.PortNumber(8080))}}}}}}}}
	_, err = gwc.GatewayV1().HTTPRoutes("default").Create(ctx, route, createOpts)
	mustCreate(t, "HTTPRoute", err)

	waitFor(t, "GatewayClass accepted", 30*time.Second, func() error {
		gc, err := gwc.GatewayV1().GatewayClasses().Get(ctx, "ours", getOpts)
		if err != nil {
			return err
		}
		return wantConds(gc.Status.Conditions, gc.Generation, "Accepted", "SupportedVersion")
	})
	waitFor(t, "Gateway status", 30*time.Second, func() error {
		g, err := gwc.GatewayV1().Gateways("default").Get(ctx, "gw", getOpts)
		if err != nil {
			return err
		}
		if len(g.Status.Addresses) != 1 || g.Status.Addresses[0].Value != "127.0.2.9" {
			return fmt.Errorf("addresses %+v", g.Status.Addresses)
		}
		if len(g.Status.Listeners) != 1 || g.Status.Listeners[0].AttachedRoutes != 1 {
			return fmt.Errorf("listeners %+v", g.Status.Listeners)
		}
		if err := wantConds(g.Status.Listeners[0].Conditions, g.Generation, "Accepted", "ResolvedRefs", "Programmed"); err != nil {
			return err
		}
		return wantConds(g.Status.Conditions, g.Generation, "Accepted", "Programmed")
	})
	routeOK := func() error {
		r, err := gwc.GatewayV1().HTTPRoutes("default").Get(ctx, "r", getOpts)
		if err != nil {
			return err
		}
		if len(r.Status.Parents) != 1 || r.Status.Parents[0].ControllerName != translate.ControllerName {
			return fmt.Errorf("parents %+v", r.Status.Parents)
		}
		return wantConds(r.Status.Parents[0].Conditions, r.Generation, "Accepted", "ResolvedRefs")
	}
	waitFor(t, "HTTPRoute status", 30*time.Second, routeOK)

	theirs, err := gwc.GatewayV1().GatewayClasses().Get(ctx, "theirs", getOpts)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range theirs.Status.Conditions {
		if c.Type == "SupportedVersion" || c.Status == metav1.ConditionTrue {
			t.Errorf("another controller's GatewayClass got status %+v", c)
		}
	}

	// A spec change: the new generation is observed.
	r, _ := gwc.GatewayV1().HTTPRoutes("default").Get(ctx, "r", getOpts)
	r.Spec.Hostnames = []gwv1.Hostname{"example.com"}
	if _, err := gwc.GatewayV1().HTTPRoutes("default").Update(ctx, r, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "HTTPRoute generation 2 observed", 30*time.Second, func() error {
		r, err := gwc.GatewayV1().HTTPRoutes("default").Get(ctx, "r", getOpts)
		if err != nil {
			return err
		}
		if r.Generation != 2 {
			return fmt.Errorf("generation %d", r.Generation)
		}
		return routeOK()
	})

	// A change that alters no status: once a snapshot holding it has been
	// written, the Gateway has not been written again.
	before, _ := gwc.GatewayV1().Gateways("default").Get(ctx, "gw", getOpts)
	_, err = core.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "unrelated"}}, createOpts)
	mustCreate(t, "ConfigMap", err)
	waitFor(t, "snapshot with the ConfigMap written", 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if lastWritten != nil {
			for _, cm := range lastWritten.ConfigMaps {
				if cm.Name == "unrelated" {
					return nil
				}
			}
		}
		return fmt.Errorf("not yet")
	})
	after, _ := gwc.GatewayV1().Gateways("default").Get(ctx, "gw", getOpts)
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("Gateway rewritten (resourceVersion %s → %s) though its status did not change", before.ResourceVersion, after.ResourceVersion)
	}

	f.stop()
}

// wantConds checks that each type is present and True with generation gen.
func wantConds(conds []metav1.Condition, gen int64, types ...string) error {
	for _, typ := range types {
		found := false
		for _, c := range conds {
			if c.Type != typ {
				continue
			}
			found = true
			if c.Status != metav1.ConditionTrue || c.ObservedGeneration != gen {
				return fmt.Errorf("%s = %s (%s: %s), observedGeneration %d, want True at %d", typ, c.Status, c.Reason, c.Message, c.ObservedGeneration, gen)
			}
		}
		if !found {
			return fmt.Errorf("no %s condition in %+v", typ, conds)
		}
	}
	return nil
}
