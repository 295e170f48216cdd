//go:build kubeapi

package controlplane

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"causeway.dev/causeway/internal/push"
	"causeway.dev/causeway/internal/translate"
	"causeway.dev/causeway/test/kubeapi"
)

// writeKubeconfig writes a kubeconfig reaching the apiserver of cfg with
// its bearer token, as `causeway control --kubeconfig` reads it.
func writeKubeconfig(t *testing.T, cfg *rest.Config, path string) {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, InsecureSkipTLSVerify: cfg.Insecure}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin"}
	kc.CurrentContext = "test"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
}

// backendGVR is the resource of Causeway's Backends.
var backendGVR = schema.GroupVersionResource{Group: "causeway.dev", Version: "v1alpha1", Resource: "backends"}

func ptr[T any](v T) *T { return &v }

// condition returns the condition typ of conds, or an error naming what
// was found instead.
func condition(conds []metav1.Condition, typ string) (metav1.Condition, error) {
	for _, c := range conds {
		if c.Type == typ {
			return c, nil
		}
	}
	return metav1.Condition{}, fmt.Errorf("no %s condition in %+v", typ, conds)
}

// TestKubernetesControlPlane runs `causeway control --kubeconfig` against a
// real kube-apiserver and one `causeway proxy`: the Gateway's Programmed
// condition follows the fleet (no proxy, a proxy in sync, a proxy
// refusing), route statuses are written, and traffic through the proxy
// follows HTTPRoute changes made in the cluster.
func TestKubernetesControlPlane(t *testing.T) {
	crds := append(kubeapi.GatewayAPICRDs(t), "../../deploy/crds/causeway.dev_backends.yaml")
	api := kubeapi.Start(t, kubeapi.Options{CRDs: crds})
	ctx := context.Background()
	gwc := gwclient.NewForConfigOrDie(api.Config)
	dir := t.TempDir()

	// The backend echoes the header the route's filter adds.
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend %s x-stage=%s", r.URL.Path, r.Header.Get("X-Stage"))
	}))
	t.Cleanup(be.Close)
	_, bePortS, _ := net.SplitHostPort(be.Listener.Addr().String())
	bePort, _ := strconv.Atoi(bePortS)

	gwPort := freePort(t, "127.0.0.1")
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := gwc.GatewayV1().GatewayClasses().Create(ctx, &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "causeway"},
		Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}}, metav1.CreateOptions{})
	must("creating GatewayClass", err)
	// The backend is a causeway.dev Backend: an EndpointSlice may not
	// hold a loopback address (the apiserver refuses it), and this test
	// sends traffic to 127.0.0.0/8 only.
	backend := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "causeway.dev/v1alpha1", "kind": "Backend",
		"metadata": map[string]any{"name": "echo", "namespace": "default"},
		"spec": map[string]any{"endpoints": []any{map[string]any{
			"ip": map[string]any{"address": "127.0.0.1", "port": int64(bePort)}}}},
	}}
	_, err = dynamic.NewForConfigOrDie(api.Config).Resource(backendGVR).Namespace("default").Create(ctx, backend, metav1.CreateOptions{})
	must("creating Backend", err)
	listener := func(name string, port int) gwv1.Listener {
		return gwv1.Listener{Name: gwv1.SectionName(name), Port: gwv1.PortNumber(port), Protocol: gwv1.HTTPProtocolType}
	}
	_, err = gwc.GatewayV1().Gateways("default").Create(ctx, &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"},
		Spec: gwv1.GatewaySpec{GatewayClassName: "causeway",
			Addresses: []gwv1.GatewaySpecAddress{{Type: ptr(gwv1.IPAddressType), Value: "127.0.0.1"}},
			Listeners: []gwv1.Listener{listener("http", gwPort)}}}, metav1.CreateOptions{})
	must("creating Gateway", err)
	_, err = gwc.GatewayV1().HTTPRoutes("default").Create(ctx, &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "echo"},
		Spec: gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}},
			Rules: []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
				BackendObjectReference: gwv1.BackendObjectReference{Group: ptr(gwv1.Group("causeway.dev")), Kind: ptr(gwv1.Kind("Backend")), Name: "echo"}}}}}}}},
		metav1.CreateOptions{})
	must("creating HTTPRoute", err)

	kubeconfig := filepath.Join(dir, "kubeconfig")
	writeKubeconfig(t, api.Config, kubeconfig)
	tokens := filepath.Join(dir, "tokens")
	must("writing tokens", os.WriteFile(tokens, []byte("tok default/gw\n"), 0o600))
	tlsDir := filepath.Join(dir, "tls")
	grpcAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
	cpAdmin := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
	cp := start(t, "control", "control", "--kubeconfig", kubeconfig, "--listen", grpcAddr, "--admin-addr", cpAdmin,
		"--tokens", tokens, "--tls-dir", tlsDir, "--debounce", "50ms")
	waitReady(t, cp, cpAdmin)

	// waitProgrammed waits until the Gateway's Programmed condition, at the
	// Gateway's current generation, satisfies ok.
	waitProgrammed := func(what string, ok func(metav1.Condition) error) metav1.Condition {
		t.Helper()
		var got metav1.Condition
		kubeapi.WaitFor(t, what, 30*time.Second, func() error {
			g, err := gwc.GatewayV1().Gateways("default").Get(ctx, "gw", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if got, err = condition(g.Status.Conditions, "Programmed"); err != nil {
				return err
			}
			if got.ObservedGeneration != g.Generation {
				return fmt.Errorf("Programmed observed generation %d, Gateway at %d", got.ObservedGeneration, g.Generation)
			}
			return ok(got)
		})
		return got
	}

	waitProgrammed("Programmed=False NoProxies with no proxy", func(c metav1.Condition) error {
		if c.Status != metav1.ConditionFalse || c.Reason != push.ReasonNoProxies {
			return fmt.Errorf("Programmed %s/%s: %s", c.Status, c.Reason, c.Message)
		}
		return nil
	})
	g, err := gwc.GatewayV1().Gateways("default").Get(ctx, "gw", metav1.GetOptions{})
	must("reading Gateway", err)
	if c, err := condition(g.Status.Conditions, "Accepted"); err != nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Gateway Accepted: %+v %v", c, err)
	}
	if len(g.Status.Addresses) != 1 || g.Status.Addresses[0].Value != "127.0.0.1" {
		t.Errorf("Gateway status.addresses %+v, want 127.0.0.1", g.Status.Addresses)
	}
	if len(g.Status.Listeners) != 1 || g.Status.Listeners[0].AttachedRoutes != 1 {
		t.Errorf("Gateway listener statuses %+v, want one with the route attached", g.Status.Listeners)
	}
	kubeapi.WaitFor(t, "GatewayClass Accepted", 30*time.Second, func() error {
		gc, err := gwc.GatewayV1().GatewayClasses().Get(ctx, "causeway", metav1.GetOptions{})
		if err != nil {
			return err
		}
		c, err := condition(gc.Status.Conditions, "Accepted")
		if err == nil && c.Status != metav1.ConditionTrue {
			err = fmt.Errorf("GatewayClass Accepted %s/%s: %s", c.Status, c.Reason, c.Message)
		}
		return err
	})
	kubeapi.WaitFor(t, "HTTPRoute Accepted and ResolvedRefs", 30*time.Second, func() error {
		r, err := gwc.GatewayV1().HTTPRoutes("default").Get(ctx, "echo", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(r.Status.Parents) != 1 || r.Status.Parents[0].ControllerName != translate.ControllerName {
			return fmt.Errorf("route parents %+v", r.Status.Parents)
		}
		for _, typ := range []string{"Accepted", "ResolvedRefs"} {
			c, err := condition(r.Status.Parents[0].Conditions, typ)
			if err != nil {
				return err
			}
			if c.Status != metav1.ConditionTrue || c.ObservedGeneration != r.Generation {
				return fmt.Errorf("route %s %s/%s at generation %d (route at %d): %s", typ, c.Status, c.Reason, c.ObservedGeneration, r.Generation, c.Message)
			}
		}
		return nil
	})

	proxyAdmin := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
	px := start(t, "proxy", "proxy", "--control", grpcAddr, "--id", "p1", "--gateways", "default/gw", "--token", "tok",
		"--ca", filepath.Join(tlsDir, "ca.pem"), "--admin-addr", proxyAdmin, "--access-log", "off",
		"--reconnect-max", "500ms", "--drain-timeout", "2s")
	waitReady(t, px, proxyAdmin)
	c := waitProgrammed("Programmed=True with the proxy in sync", func(c metav1.Condition) error {
		if c.Status != metav1.ConditionTrue {
			return fmt.Errorf("Programmed %s/%s: %s", c.Status, c.Reason, c.Message)
		}
		return nil
	})
	if !strings.Contains(c.Message, "1 of 1") {
		t.Errorf("Programmed message %q does not count the proxy", c.Message)
	}

	gwAddr := fmt.Sprintf("127.0.0.1:%d", gwPort)
	fetch := func(path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+gwAddr+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := fetch("/one"); code != http.StatusOK || body != "backend /one x-stage=" {
		t.Fatalf("through the proxy: %d %q", code, body)
	}

	// A route change in the cluster: traffic follows.
	updateRoute := func(edit func(*gwv1.HTTPRoute)) {
		t.Helper()
		kubeapi.WaitFor(t, "HTTPRoute updated", 30*time.Second, func() error {
			r, err := gwc.GatewayV1().HTTPRoutes("default").Get(ctx, "echo", metav1.GetOptions{})
			if err != nil {
				return err
			}
			edit(r)
			_, err = gwc.GatewayV1().HTTPRoutes("default").Update(ctx, r, metav1.UpdateOptions{})
			return err // a conflict with the status writer: again
		})
	}
	updateRoute(func(r *gwv1.HTTPRoute) {
		r.Spec.Rules[0].Filters = []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterRequestHeaderModifier,
			RequestHeaderModifier: &gwv1.HTTPHeaderFilter{Set: []gwv1.HTTPHeader{{Name: "X-Stage", Value: "two"}}}}}
	})
	var last string
	eventually(t, "traffic follows the header filter", 15*time.Second, func() bool {
		_, last = fetch("/two")
		return last == "backend /two x-stage=two"
	})
	kubeapi.WaitFor(t, "route generation 2 observed", 30*time.Second, func() error {
		r, err := gwc.GatewayV1().HTTPRoutes("default").Get(ctx, "echo", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(r.Status.Parents) != 1 {
			return fmt.Errorf("route parents %+v", r.Status.Parents)
		}
		c, err := condition(r.Status.Parents[0].Conditions, "Accepted")
		if err == nil && (c.Status != metav1.ConditionTrue || c.ObservedGeneration != r.Generation || r.Generation < 2) {
			err = fmt.Errorf("route Accepted %s at generation %d (route at %d)", c.Status, c.ObservedGeneration, r.Generation)
		}
		return err
	})
	waitProgrammed("Programmed=True after the route change", func(c metav1.Condition) error {
		if c.Status != metav1.ConditionTrue {
			return fmt.Errorf("Programmed %s/%s: %s", c.Status, c.Reason, c.Message)
		}
		return nil
	})

	// A listener the proxy cannot bind (the port is taken): the proxy
	// refuses the configuration, keeps serving its last good one, and
	// the Gateway says so.
	occupied, err := net.Listen("tcp", "127.0.0.1:0")
	must("occupying a port", err)
	defer occupied.Close()
	busyPort := occupied.Addr().(*net.TCPAddr).Port
	updateGateway := func(listeners ...gwv1.Listener) {
		t.Helper()
		kubeapi.WaitFor(t, "Gateway updated", 30*time.Second, func() error {
			g, err := gwc.GatewayV1().Gateways("default").Get(ctx, "gw", metav1.GetOptions{})
			if err != nil {
				return err
			}
			g.Spec.Listeners = listeners
			_, err = gwc.GatewayV1().Gateways("default").Update(ctx, g, metav1.UpdateOptions{})
			return err
		})
	}
	updateGateway(listener("http", gwPort), listener("busy", busyPort))
	c = waitProgrammed("Programmed=False with the proxy's NACK", func(c metav1.Condition) error {
		if c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "refused") {
			return fmt.Errorf("Programmed %s/%s: %s", c.Status, c.Reason, c.Message)
		}
		return nil
	})
	if !strings.Contains(c.Message, "bind") || !strings.Contains(c.Message, strconv.Itoa(busyPort)) {
		t.Errorf("Programmed message lacks the bind error on port %d: %q", busyPort, c.Message)
	}
	t.Logf("Programmed after the NACK: %s: %s", c.Reason, c.Message)
	if code, body := fetch("/three"); code != http.StatusOK || body != "backend /three x-stage=two" {
		t.Errorf("last good configuration no longer served: %d %q", code, body)
	}

	// Once the port is free and the listener is gone, the proxy is in
	// sync again; once it is gone, no proxy serves the Gateway.
	occupied.Close()
	updateGateway(listener("http", gwPort))
	waitProgrammed("Programmed=True after the revert", func(c metav1.Condition) error {
		if c.Status != metav1.ConditionTrue {
			return fmt.Errorf("Programmed %s/%s: %s", c.Status, c.Reason, c.Message)
		}
		return nil
	})
	px.stop()
	waitProgrammed("Programmed=False NoProxies once the proxy left", func(c metav1.Condition) error {
		if c.Status != metav1.ConditionFalse || c.Reason != push.ReasonNoProxies {
			return fmt.Errorf("Programmed %s/%s: %s", c.Status, c.Reason, c.Message)
		}
		return nil
	})
	cp.stop()
	if err := <-cp.done; err != nil {
		t.Errorf("control plane exit: %v\n%s", err, cp.stderr.String())
	}
}

// TestKubernetesReplicasShareFleet runs two `causeway control --kubeconfig`
// replicas, A and B, against one kube-apiserver. Each publishes its
// proxies in a Lease and writes the Gateway's Programmed condition from
// every live replica's: B starting without proxies does not undo A's
// Programmed=True; A dying leaves NoProxies once its lease has expired
// when its proxy cannot fail over; a proxy failing over from A to B keeps
// the Gateway programmed.
func TestKubernetesReplicasShareFleet(t *testing.T) {
	api := kubeapi.Start(t, kubeapi.Options{CRDs: kubeapi.GatewayAPICRDs(t)})
	ctx := context.Background()
	gwc := gwclient.NewForConfigOrDie(api.Config)
	dyn := dynamic.NewForConfigOrDie(api.Config)
	dir := t.TempDir()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	gwPort := freePort(t, "127.0.0.1")
	_, err := gwc.GatewayV1().GatewayClasses().Create(ctx, &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "causeway"},
		Spec: gwv1.GatewayClassSpec{ControllerName: translate.ControllerName}}, metav1.CreateOptions{})
	must("creating GatewayClass", err)
	_, err = gwc.GatewayV1().Gateways("default").Create(ctx, &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw"},
		Spec: gwv1.GatewaySpec{GatewayClassName: "causeway",
			Addresses: []gwv1.GatewaySpecAddress{{Type: ptr(gwv1.IPAddressType), Value: "127.0.0.1"}},
			Listeners: []gwv1.Listener{{Name: "http", Port: gwv1.PortNumber(gwPort), Protocol: gwv1.HTTPProtocolType}}}},
		metav1.CreateOptions{})
	must("creating Gateway", err)

	kubeconfig := filepath.Join(dir, "kubeconfig")
	writeKubeconfig(t, api.Config, kubeconfig)
	tokens := filepath.Join(dir, "tokens")
	must("writing tokens", os.WriteFile(tokens, []byte("tok default/gw\n"), 0o600))
	tlsDir := filepath.Join(dir, "tls")
	const leaseDuration = 6 * time.Second
	type replica struct {
		name, grpc, admin string
		p                 *process
	}
	newReplica := func(name string) *replica {
		return &replica{name: name, grpc: fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1")),
			admin: fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))}
	}
	run := func(r *replica) {
		t.Helper()
		r.p = start(t, "control "+r.name, "control", "--kubeconfig", kubeconfig, "--listen", r.grpc, "--admin-addr", r.admin,
			"--tokens", tokens, "--tls-dir", tlsDir, "--debounce", "50ms",
			"--identity", r.name, "--lease-namespace", "default", "--lease-duration", leaseDuration.String())
		waitReady(t, r.p, r.admin)
	}
	proxy := func(id string, controls ...string) *process {
		t.Helper()
		admin := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
		p := start(t, "proxy "+id, "proxy", "--control", strings.Join(controls, ","), "--id", id, "--gateways", "default/gw",
			"--token", "tok", "--ca", filepath.Join(tlsDir, "ca.pem"), "--admin-addr", admin, "--access-log", "off",
			"--reconnect-max", "500ms", "--drain-timeout", "1s")
		waitReady(t, p, admin)
		return p
	}
	programmed := func() (metav1.Condition, error) {
		g, err := gwc.GatewayV1().Gateways("default").Get(ctx, "gw", metav1.GetOptions{})
		if err != nil {
			return metav1.Condition{}, err
		}
		return condition(g.Status.Conditions, "Programmed")
	}
	// waitProgrammed polls with a generous bound: lease expiry takes
	// leaseDuration, the rest is event-driven.
	waitProgrammed := func(what string, ok func(metav1.Condition) bool) metav1.Condition {
		t.Helper()
		var got metav1.Condition
		kubeapi.WaitFor(t, what, 30*time.Second+3*leaseDuration, func() error {
			c, err := programmed()
			if err != nil {
				return err
			}
			if got = c; !ok(c) {
				return fmt.Errorf("Programmed %s/%s: %s", c.Status, c.Reason, c.Message)
			}
			return nil
		})
		return got
	}
	isTrue := func(n string) func(metav1.Condition) bool {
		return func(c metav1.Condition) bool {
			return c.Status == metav1.ConditionTrue && strings.Contains(c.Message, n+" connected proxies run the current configuration")
		}
	}
	// watchFalse records every Programmed=False the Gateway goes through
	// from now until the returned function is called.
	watchFalse := func() func() []string {
		t.Helper()
		g, err := gwc.GatewayV1().Gateways("default").Get(ctx, "gw", metav1.GetOptions{})
		must("reading Gateway", err)
		w, err := gwc.GatewayV1().Gateways("default").Watch(ctx, metav1.ListOptions{
			FieldSelector: "metadata.name=gw", ResourceVersion: g.ResourceVersion})
		must("watching Gateway", err)
		var seen []string
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ev := range w.ResultChan() {
				g, ok := ev.Object.(*gwv1.Gateway)
				if !ok {
					continue
				}
				if c, err := condition(g.Status.Conditions, "Programmed"); err == nil && c.Status != metav1.ConditionTrue {
					seen = append(seen, c.Reason+": "+c.Message)
				}
			}
		}()
		return func() []string { w.Stop(); <-done; return seen }
	}
	// renewals waits until replica's Lease has been written n more times:
	// the replicas have exchanged their fleets since.
	leases := dyn.Resource(schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}).Namespace("default")
	renewals := func(name string, n int) {
		t.Helper()
		var first string
		seen := 0
		kubeapi.WaitFor(t, fmt.Sprintf("%d renewals of %s's lease", n, name), 30*time.Second+time.Duration(n)*leaseDuration, func() error {
			l, err := leases.Get(ctx, "causeway-control-"+name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if rv := l.GetResourceVersion(); rv != first {
				if first != "" {
					seen++
				}
				first = rv
			}
			if seen < n {
				return fmt.Errorf("%d renewals seen", seen)
			}
			return nil
		})
	}

	a, b := newReplica("a"), newReplica("b")
	run(a)
	waitProgrammed("Programmed=False NoProxies with no proxy", func(c metav1.Condition) bool {
		return c.Status == metav1.ConditionFalse && c.Reason == push.ReasonNoProxies
	})
	// p1 knows only A: it cannot fail over.
	p1 := proxy("p1", a.grpc)
	waitProgrammed("Programmed=True with p1 on A", isTrue("1 of 1"))

	// B starts with no proxy: the Gateway stays programmed.
	stopWatch := watchFalse()
	run(b)
	renewals("a", 2)
	renewals("b", 2)
	if c, err := programmed(); err != nil || !isTrue("1 of 1")(c) {
		t.Errorf("with B running: Programmed %+v %v", c, err)
	}
	if seen := stopWatch(); len(seen) > 0 {
		t.Errorf("the Gateway went unprogrammed when B started: %q", seen)
	}
	code, body := get(b.admin, "/status")
	if code != http.StatusOK || !strings.Contains(body, "1 of 1 connected proxies") {
		t.Errorf("B's /status does not count A's proxy: %d %s", code, body)
	}
	out, err := exec.Command(binary, "ctl", "proxy-status", "--control-admin", a.admin+","+b.admin).CombinedOutput()
	if err != nil {
		t.Fatalf("ctl proxy-status of both replicas: %v\n%s", err, out)
	}
	if r := row(string(out), "p1"); !strings.Contains(r, a.admin) || !strings.Contains(r, "SYNCED") {
		t.Errorf("merged proxy-status row of p1 %q (table:\n%s)", r, out)
	}

	// A dies; p1 cannot reach B: once A's lease expires, B writes that
	// no proxy serves the Gateway.
	a.p.kill()
	killed := time.Now()
	waitProgrammed("Programmed=False NoProxies after A died", func(c metav1.Condition) bool {
		return c.Status == metav1.ConditionFalse && c.Reason == push.ReasonNoProxies
	})
	t.Logf("NoProxies %v after A was killed (lease duration %v)", time.Since(killed).Round(100*time.Millisecond), leaseDuration)
	p1.stop()

	// A again, and p2, which knows both replicas: when the one it is
	// connected to dies, it fails over to the other, and the Gateway stays
	// programmed, counting p2 once the dead replica's lease expired.
	run(a)
	p2 := proxy("p2", a.grpc, b.grpc)
	waitProgrammed("Programmed=True with p2", isTrue("1 of 1"))
	on, other := a, b
	eventually(t, "p2 synced on a replica", 30*time.Second, func() bool {
		if synced(fleetStatus(t, b.admin)["p2"]) {
			on, other = b, a
			return true
		}
		return synced(fleetStatus(t, a.admin)["p2"])
	})
	t.Logf("p2 is on %s; killing it", on.name)
	stopWatch = watchFalse()
	on.p.kill()
	killed = time.Now()
	eventually(t, "p2 failed over to "+other.name, 30*time.Second, func() bool { return synced(fleetStatus(t, other.admin)["p2"]) })
	// Until the dead replica's lease expires, p2 counts twice (there, as
	// it last said, and here); after, once.
	eventually(t, on.name+"'s lease expired", 2*leaseDuration, func() bool { return time.Since(killed) > leaseDuration+time.Second })
	// The surviving replica's view counts p2 once. (The count in the
	// cluster may lag: kube.StatusWriter compares with the Gateway as its
	// last translation saw it, so a message returning to that value after
	// a status-only change is not written again; Programmed stays True.)
	eventually(t, other.name+"'s view counts p2 once", 30*time.Second, func() bool {
		_, st := get(other.admin, "/status")
		return strings.Contains(st, "1 of 1 connected proxies")
	})
	waitProgrammed("Programmed=True with p2 after the failover", func(c metav1.Condition) bool {
		return c.Status == metav1.ConditionTrue && c.Reason == "Programmed"
	})
	if seen := stopWatch(); len(seen) > 0 {
		t.Errorf("the Gateway went unprogrammed while p2 failed over: %q", seen)
	}
	p2.stop()
	other.p.stop()
	if err := <-other.p.done; err != nil {
		t.Errorf("%s's exit: %v\n%s", other.name, err, other.p.stderr.String())
	}
	// The replica deleted its Lease on the way out.
	if _, err := leases.Get(ctx, "causeway-control-"+other.name, metav1.GetOptions{}); err == nil {
		t.Errorf("%s's lease outlived it", other.name)
	}
}
