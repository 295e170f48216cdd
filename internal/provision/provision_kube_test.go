//go:build kubeapi

package provision

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"causeway.dev/causeway/internal/provider/kube"
	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/translate"
)

var (
	gatewayGVR = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"}
	classGVR   = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gatewayclasses"}
	nsGVR      = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

const testNS = "infra"

// pipeline is `causeway controller`'s Kubernetes path: provider,
// translator (with a pool address), provisioner.
func pipeline(t *testing.T, cfg *rest.Config, opts Options) (stop func()) {
	t.Helper()
	opts.Config = cfg
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	pv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := kube.New(kube.Options{Config: cfg, Debounce: 20 * time.Millisecond, Logger: opts.Logger})
	if err != nil {
		t.Fatal(err)
	}
	addrs := func(*gwv1.Gateway) []string { return []string{"192.0.2.10"} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		_ = kp.Run(ctx, func(s *resource.Snapshot) {
			_, rep := translate.Translate(s, translate.Options{Addresses: addrs})
			pv.Update(s, rep, addrs)
		})
	}()
	go func() { defer func() { done <- struct{}{} }(); _ = pv.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done; <-done }) }
	t.Cleanup(stop)
	return stop
}

func create(t *testing.T, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	var ri dynamic.ResourceInterface = dyn.Resource(gvr)
	if ns != "" {
		ri = dyn.Resource(gvr).Namespace(ns)
	}
	out, err := ri.Create(context.Background(), u, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating %s: %v", u.GetName(), err)
	}
	return out
}

// gatewayDoc is a Gateway with infrastructure metadata and one listener.
func gatewayDoc(name, class string, port int, label string) string {
	return fmt.Sprintf(`
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: %s, namespace: %s}
spec:
  gatewayClassName: %s
  infrastructure:
    labels: {key2: %s}
    annotations: {key1: value1}
  listeners: [{name: http, port: %d, protocol: HTTP}]
`, name, testNS, class, label, port)
}

// setListener changes a Gateway's port and infrastructure label.
func setListener(t *testing.T, dyn dynamic.Interface, name string, port int, label string) {
	t.Helper()
	ri := dyn.Resource(gatewayGVR).Namespace(testNS)
	u, err := ri.Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"name": "http", "port": int64(port), "protocol": "HTTP"}}, "spec", "listeners")
	_ = unstructured.SetNestedField(u.Object, label, "spec", "infrastructure", "labels", "key2")
	if _, err := ri.Update(context.Background(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// get fetches an object; nil when absent.
func get(t *testing.T, dyn dynamic.Interface, kind, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := dyn.Resource(kindGVR[kind]).Namespace(testNS).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// checkMeta reports what u lacks of the Gateway's infrastructure metadata
// and ownership.
func checkMeta(u *unstructured.Unstructured, gw *unstructured.Unstructured, label string) error {
	l, a := u.GetLabels(), u.GetAnnotations()
	if l["key2"] != label || l[gwv1.GatewayNameLabelKey] != gw.GetName() || a["key1"] != "value1" {
		return fmt.Errorf("%s %s: labels %v, annotations %v", u.GetKind(), u.GetName(), l, a)
	}
	o := u.GetOwnerReferences()
	if len(o) != 1 || o[0].UID != gw.GetUID() || o[0].Kind != "Gateway" || o[0].Name != gw.GetName() || o[0].Controller == nil || !*o[0].Controller {
		return fmt.Errorf("%s %s: owner references %+v", u.GetKind(), u.GetName(), o)
	}
	return nil
}

func ports(u *unstructured.Unstructured, path ...string) []int64 {
	ps, _, _ := unstructured.NestedSlice(u.Object, path...)
	var out []int64
	for _, p := range ps {
		m := p.(map[string]any)
		for _, k := range []string{"port", "containerPort"} {
			if n, ok := m[k].(int64); ok {
				out = append(out, n)
			}
		}
	}
	return out
}

// TestProvisionLifecycle drives provisioning through the real pipeline
// against a real API server: in-process mode, then deployment mode, each
// creating objects for a Gateway with infrastructure metadata, following a
// change of its port and label, and cleaning up after its deletion; and a
// switch of modes replacing one set of objects with the other.
func TestProvisionLifecycle(t *testing.T) {
	cfg := startAPIServer(t)
	dyn := dynamic.NewForConfigOrDie(cfg)
	ctx := context.Background()
	create(t, dyn, nsGVR, "", "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+testNS+"}")
	create(t, dyn, classGVR, "", "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: causeway}\nspec: {controllerName: "+translate.ControllerName+"}")
	// Not ours: never provisioned.
	create(t, dyn, classGVR, "", "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: other}\nspec: {controllerName: example.com/other}")
	foreign := create(t, dyn, gatewayGVR, testNS, gatewayDoc("foreign", "other", 80, "x"))

	t.Run("inprocess", func(t *testing.T) {
		stop := pipeline(t, cfg, Options{Mode: InProcess})
		defer stop()
		gw := create(t, dyn, gatewayGVR, testNS, gatewayDoc("edge", "causeway", 8080, "value2"))
		expect := func(port int64, label string) func() error {
			return func() error {
				svc, eps := get(t, dyn, "Service", "edge-causeway"), get(t, dyn, "EndpointSlice", "edge-causeway-ipv4")
				if svc == nil || eps == nil {
					return fmt.Errorf("service %v, slice %v", svc != nil, eps != nil)
				}
				for _, u := range []*unstructured.Unstructured{svc, eps} {
					if err := checkMeta(u, gw, label); err != nil {
						return err
					}
				}
				if ip, _, _ := unstructured.NestedString(svc.Object, "spec", "clusterIP"); ip != "None" {
					return fmt.Errorf("clusterIP %q", ip)
				}
				if _, sel, _ := unstructured.NestedMap(svc.Object, "spec", "selector"); sel {
					return fmt.Errorf("the Service has a selector")
				}
				if p := ports(svc, "spec", "ports"); !slices.Equal(p, []int64{port}) {
					return fmt.Errorf("service ports %v", p)
				}
				if p := ports(eps, "ports"); !slices.Equal(p, []int64{port}) {
					return fmt.Errorf("slice ports %v", p)
				}
				eps0, _, _ := unstructured.NestedSlice(eps.Object, "endpoints")
				if len(eps0) != 1 || fmt.Sprint(eps0[0].(map[string]any)["addresses"]) != "[192.0.2.10]" {
					return fmt.Errorf("endpoints %v", eps0)
				}
				if eps.GetLabels()["kubernetes.io/service-name"] != "edge-causeway" {
					return fmt.Errorf("slice labels %v", eps.GetLabels())
				}
				return nil
			}
		}
		waitFor(t, "in-process objects", 30*time.Second, expect(8080, "value2"))
		// As the GatewayInfrastructure conformance test looks for them.
		l, err := dyn.Resource(kindGVR["Service"]).Namespace(testNS).List(ctx, metav1.ListOptions{LabelSelector: gwv1.GatewayNameLabelKey + "=edge"})
		if err != nil || len(l.Items) != 1 {
			t.Fatalf("services labelled gateway-name=edge: %v, %v", l, err)
		}

		setListener(t, dyn, "edge", 8081, "value3")
		waitFor(t, "in-process objects updated", 30*time.Second, expect(8081, "value3"))

		// Unchanged objects are not written again: another Gateway's
		// arrival leaves edge's Service as it was.
		rv := get(t, dyn, "Service", "edge-causeway").GetResourceVersion()
		create(t, dyn, gatewayGVR, testNS, gatewayDoc("second", "causeway", 9090, "s"))
		waitFor(t, "second Gateway's Service", 30*time.Second, func() error {
			if get(t, dyn, "Service", "second-causeway") == nil {
				return fmt.Errorf("missing")
			}
			return nil
		})
		if got := get(t, dyn, "Service", "edge-causeway").GetResourceVersion(); got != rv {
			t.Errorf("edge's Service rewritten (resourceVersion %s -> %s) although unchanged", rv, got)
		}

		if err := dyn.Resource(gatewayGVR).Namespace(testNS).Delete(ctx, "edge", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "in-process objects deleted", 30*time.Second, func() error {
			if get(t, dyn, "Service", "edge-causeway") != nil || get(t, dyn, "EndpointSlice", "edge-causeway-ipv4") != nil {
				return fmt.Errorf("still there")
			}
			return nil
		})
		if get(t, dyn, "Service", "second-causeway") == nil {
			t.Error("second's Service deleted with edge's")
		}
	})

	t.Run("deployment", func(t *testing.T) {
		pipeline(t, cfg, Options{Mode: Deployment, Image: "causeway:test", ControlAddress: "causeway-control.causeway-system:18000",
			ControlCA: []byte("-----BEGIN CERTIFICATE-----\n"), ControlToken: "s3cret", ServiceType: "ClusterIP"})
		// The switch: second's headless Service becomes the proxies'
		// (clusterIP is immutable: deleted and created again), its
		// EndpointSlice goes.
		waitFor(t, "second switched to deployment mode", 30*time.Second, func() error {
			svc := get(t, dyn, "Service", "second-causeway")
			if svc == nil || get(t, dyn, "Deployment", "second-causeway") == nil {
				return fmt.Errorf("missing")
			}
			if ip, _, _ := unstructured.NestedString(svc.Object, "spec", "clusterIP"); ip == "None" {
				return fmt.Errorf("still headless")
			}
			if get(t, dyn, "EndpointSlice", "second-causeway-ipv4") != nil {
				return fmt.Errorf("in-process EndpointSlice left")
			}
			return nil
		})

		gw := create(t, dyn, gatewayGVR, testNS, gatewayDoc("edge", "causeway", 8080, "value2"))
		expect := func(port int64, label string) func() error {
			return func() error {
				objs := map[string]*unstructured.Unstructured{}
				for _, kind := range []string{"ServiceAccount", "Secret", "Deployment", "Service"} {
					if objs[kind] = get(t, dyn, kind, "edge-causeway"); objs[kind] == nil {
						return fmt.Errorf("no %s", kind)
					}
					if err := checkMeta(objs[kind], gw, label); err != nil {
						return err
					}
				}
				dep, svc := objs["Deployment"], objs["Service"]
				tmpl, _, _ := unstructured.NestedMap(dep.Object, "spec", "template", "metadata")
				pod := &unstructured.Unstructured{Object: map[string]any{"metadata": tmpl}}
				if pod.GetLabels()["key2"] != label || pod.GetLabels()[gwv1.GatewayNameLabelKey] != "edge" || pod.GetAnnotations()["key1"] != "value1" {
					return fmt.Errorf("pod template metadata %v", tmpl)
				}
				cs, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
				c := cs[0].(map[string]any)
				want := "[proxy --control causeway-control.causeway-system:18000 --gateways infra/edge --ca /etc/causeway/control/ca.pem --token-file /etc/causeway/control/token --listen-address 0.0.0.0]"
				if fmt.Sprint(c["args"]) != want || c["image"] != "causeway:test" {
					return fmt.Errorf("container image %v args %v", c["image"], c["args"])
				}
				if p := ports(&unstructured.Unstructured{Object: c}, "ports"); !slices.Equal(p, []int64{port}) {
					return fmt.Errorf("container ports %v", p)
				}
				if p := ports(svc, "spec", "ports"); !slices.Equal(p, []int64{port}) {
					return fmt.Errorf("service ports %v", p)
				}
				if typ, _, _ := unstructured.NestedString(svc.Object, "spec", "type"); typ != "ClusterIP" {
					return fmt.Errorf("service type %q", typ)
				}
				sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
				for k, v := range sel {
					if pod.GetLabels()[k] != v {
						return fmt.Errorf("service selector %v does not select the pods %v", sel, pod.GetLabels())
					}
				}
				data, _, _ := unstructured.NestedStringMap(objs["Secret"].Object, "data")
				if data["token"] != "czNjcmV0" { // base64 of s3cret
					return fmt.Errorf("secret data %v", data)
				}
				return nil
			}
		}
		waitFor(t, "deployment objects", 30*time.Second, expect(8080, "value2"))
		setListener(t, dyn, "edge", 8443, "value4")
		waitFor(t, "deployment objects updated", 30*time.Second, expect(8443, "value4"))

		if err := dyn.Resource(gatewayGVR).Namespace(testNS).Delete(ctx, "edge", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "deployment objects deleted", 30*time.Second, func() error {
			for _, kind := range []string{"ServiceAccount", "Secret", "Deployment", "Service"} {
				if get(t, dyn, kind, "edge-causeway") != nil {
					return fmt.Errorf("%s still there", kind)
				}
			}
			return nil
		})
	})

	// The other controller's Gateway got nothing, in either mode.
	l, err := dyn.Resource(kindGVR["Service"]).Namespace(testNS).List(ctx, metav1.ListOptions{LabelSelector: gwv1.GatewayNameLabelKey + "=" + foreign.GetName()})
	if err != nil || len(l.Items) != 0 {
		t.Errorf("services of another controller's Gateway: %v, %v", l, err)
	}
}
