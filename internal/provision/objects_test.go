package provision

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
)

func gatewayObj(name string, infra *gwv1.GatewayInfrastructure, listeners ...gwv1.Listener) *gwv1.Gateway {
	return &gwv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)},
		Spec:       gwv1.GatewaySpec{GatewayClassName: "causeway", Infrastructure: infra, Listeners: listeners},
	}
}

func TestGatewaysTakesAcceptedOnly(t *testing.T) {
	infra := &gwv1.GatewayInfrastructure{
		Labels:      map[gwv1.LabelKey]gwv1.LabelValue{"key2": "value2"},
		Annotations: map[gwv1.AnnotationKey]gwv1.AnnotationValue{"key1": "value1"},
	}
	snap := &resource.Snapshot{Gateways: []*gwv1.Gateway{
		gatewayObj("b", infra,
			gwv1.Listener{Name: "https", Port: 443, Protocol: gwv1.HTTPSProtocolType},
			gwv1.Listener{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType},
			gwv1.Listener{Name: "https2", Port: 443, Protocol: gwv1.HTTPSProtocolType, Hostname: ptr(gwv1.Hostname("x.example"))},
			gwv1.Listener{Name: "dns", Port: 53, Protocol: gwv1.UDPProtocolType}),
		gatewayObj("a", nil, gwv1.Listener{Name: "http", Port: 8080, Protocol: gwv1.HTTPProtocolType}),
		gatewayObj("refused", nil, gwv1.Listener{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}),
	}}
	snap.Gateways[1].Spec.Addresses = []gwv1.GatewaySpecAddress{{Value: "192.0.2.7"}}
	rep := &status.Report{}
	for name, ok := range map[string]bool{"a": true, "b": true, "refused": false} {
		e := rep.For(status.Ref{Kind: "Gateway", Namespace: "ns", Name: name}, status.Source{})
		e.Conditions = append(e.Conditions, status.Condition{Type: status.Accepted, Status: ok})
	}
	pool := func(*gwv1.Gateway) []string { return []string{"192.0.2.9"} }
	got := Gateways(snap, rep, pool)
	want := []Gateway{
		{Namespace: "ns", Name: "a", UID: "uid-a", Ports: []Port{{8080, "TCP"}}, Addresses: []string{"192.0.2.7"}},
		{Namespace: "ns", Name: "b", UID: "uid-b", Ports: []Port{{53, "UDP"}, {80, "TCP"}, {443, "TCP"}},
			Labels: map[string]string{"key2": "value2"}, Annotations: map[string]string{"key1": "value1"},
			Addresses: []string{"192.0.2.9"}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Gateways (-want +got):\n%s", d)
	}
	if got := Gateways(snap, rep, nil); got[1].Addresses[0] != "" {
		t.Errorf("without a pool, addresses %q; want all interfaces", got[1].Addresses)
	}
}

func ptr[T any](v T) *T { return &v }

func TestObjectName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	long := strings.Repeat("a", 100)
	for _, name := range []string{"edge", "9lives", "a.b.c", long, long + "b", "x-" + strings.Repeat("y", 60)} {
		n := ObjectName(name)
		if len(n) > 63 || !valid.MatchString(n) {
			t.Errorf("ObjectName(%q) = %q: not a DNS-1035 label", name, n)
		}
	}
	if ObjectName("edge") != "edge-causeway" {
		t.Errorf("ObjectName(edge) = %q", ObjectName("edge"))
	}
	if ObjectName(long) == ObjectName(long+"b") {
		t.Error("two long names share an object name")
	}
	if v := labelValue(long); len(v) > 63 || v == labelValue(long+"b") {
		t.Errorf("labelValue(long) = %q", v)
	}
}

func byKind(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	m := map[string]*unstructured.Unstructured{}
	for _, u := range objs {
		m[u.GetKind()+"/"+u.GetName()] = u
	}
	return m
}

func TestInProcessObjects(t *testing.T) {
	if _, err := New(Options{Mode: InProcess}); err == nil {
		t.Fatal("InProcess without Config accepted")
	}
	p := &Provisioner{opts: Options{Mode: InProcess, Instance: "causeway", PodIPs: []string{"10.244.0.5", "fd00::5"}}}
	g := Gateway{Namespace: "ns", Name: "edge", UID: "u1", Ports: []Port{{80, "TCP"}, {53, "UDP"}},
		Labels:      map[string]string{"key2": "value2", LabelProvisioner: "spoofed"},
		Annotations: map[string]string{"key1": "value1"}, Addresses: []string{"", "127.0.2.4", "192.0.2.1"}}
	objs := byKind(p.objects(g))
	svc := objs["Service/edge-causeway"]
	v4, v6 := objs["EndpointSlice/edge-causeway-ipv4"], objs["EndpointSlice/edge-causeway-ipv6"]
	if svc == nil || v4 == nil || v6 == nil || len(objs) != 3 {
		t.Fatalf("objects %v", objs)
	}
	for _, u := range objs {
		l, a := u.GetLabels(), u.GetAnnotations()
		if l["key2"] != "value2" || l[gwv1.GatewayNameLabelKey] != "edge" || l[LabelProvisioner] != "causeway" {
			t.Errorf("%s labels %v", u.GetName(), l)
		}
		if a["key1"] != "value1" || a[AnnotationHash] == "" {
			t.Errorf("%s annotations %v", u.GetName(), a)
		}
		if o := u.GetOwnerReferences(); len(o) != 1 || o[0].UID != "u1" || o[0].Kind != "Gateway" || o[0].Controller == nil || !*o[0].Controller {
			t.Errorf("%s owners %v", u.GetName(), o)
		}
	}
	if ip, _, _ := unstructured.NestedString(svc.Object, "spec", "clusterIP"); ip != "None" {
		t.Errorf("clusterIP %q", ip)
	}
	eps, _, _ := unstructured.NestedSlice(v4.Object, "endpoints")
	var addrs []string
	for _, e := range eps {
		a, _, _ := unstructured.NestedStringSlice(e.(map[string]any), "addresses")
		addrs = append(addrs, a...)
	}
	if d := cmp.Diff([]string{"10.244.0.5", "192.0.2.1"}, addrs); d != "" {
		t.Errorf("IPv4 endpoints (loopback left out) (-want +got):\n%s", d)
	}
	if v4.GetLabels()["kubernetes.io/service-name"] != "edge-causeway" {
		t.Errorf("slice labels %v", v4.GetLabels())
	}
	// The hash follows the content.
	h := hashOf(svc)
	g.Ports[0].Port = 81
	if hashOf(byKind(p.objects(g))["Service/edge-causeway"]) == h {
		t.Error("hash unchanged after a port change")
	}
	g.Ports[0].Port = 80
	if hashOf(byKind(p.objects(g))["Service/edge-causeway"]) != h {
		t.Error("hash not stable")
	}
}

func TestDeploymentObjects(t *testing.T) {
	for _, bad := range []Options{
		{Mode: Deployment, ControlAddress: "cp:18000", ControlCA: []byte("x"), ControlToken: "t"},
		{Mode: Deployment, Image: "img", ControlCA: []byte("x"), ControlToken: "t"},
		{Mode: Deployment, Image: "img", ControlAddress: "cp:18000", ControlToken: "t"},
		{Mode: Deployment, Image: "img", ControlAddress: "cp:18000", ControlCA: []byte("x")},
		{Mode: Deployment, Image: "img", ControlAddress: "cp:18000", ControlCA: []byte("x"), ControlToken: "t", ServiceType: "NodePort"},
		{Mode: "sidecar"},
	} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
	p := &Provisioner{opts: Options{Mode: Deployment, Instance: "causeway", Image: "img:1", ControlAddress: "cp:18000",
		ServiceType: "ClusterIP", ControlCA: []byte("PEM"), ControlToken: "tok"}}
	g := Gateway{Namespace: "ns", Name: "edge", UID: "u1", Ports: []Port{{80, "TCP"}},
		Labels: map[string]string{"key2": "value2"}, Annotations: map[string]string{"key1": "value1"}}
	objs := byKind(p.objects(g))
	if len(objs) != 4 || objs["ServiceAccount/edge-causeway"] == nil || objs["Secret/edge-causeway"] == nil {
		t.Fatalf("objects %v", objs)
	}
	dep := objs["Deployment/edge-causeway"]
	args, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	c := args[0].(map[string]any)
	want := []any{"proxy", "--control", "cp:18000", "--gateways", "ns/edge", "--ca", "/etc/causeway/control/ca.pem",
		"--token-file", "/etc/causeway/control/token", "--listen-address", "0.0.0.0"}
	if d := cmp.Diff(want, c["args"]); d != "" || c["image"] != "img:1" {
		t.Errorf("container %v (-want +got args):\n%s", c, d)
	}
	podLabels, _, _ := unstructured.NestedStringMap(dep.Object, "spec", "template", "metadata", "labels")
	podAnn, _, _ := unstructured.NestedStringMap(dep.Object, "spec", "template", "metadata", "annotations")
	sel, _, _ := unstructured.NestedStringMap(dep.Object, "spec", "selector", "matchLabels")
	if podLabels["key2"] != "value2" || podLabels[gwv1.GatewayNameLabelKey] != "edge" || podAnn["key1"] != "value1" {
		t.Errorf("pod template labels %v annotations %v", podLabels, podAnn)
	}
	for k, v := range sel {
		if podLabels[k] != v {
			t.Errorf("selector %v does not select the pods %v", sel, podLabels)
		}
	}
	svc := objs["Service/edge-causeway"]
	if typ, _, _ := unstructured.NestedString(svc.Object, "spec", "type"); typ != "ClusterIP" {
		t.Errorf("service type %q", typ)
	}
	if s, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector"); cmp.Diff(sel, s) != "" {
		t.Errorf("service selector %v, deployment's %v", s, sel)
	}
}
