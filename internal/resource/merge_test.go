package resource

import (
	"reflect"
	"strings"
	"testing"

	"causeway.dev/causeway/internal/status"
)

func decoded(file, data string) *Snapshot {
	s := New()
	s.Decode(file, []byte(data))
	return s
}

func TestMerge(t *testing.T) {
	a := decoded("a.yaml", `
apiVersion: v1
kind: Service
metadata: {name: app}
spec: {ports: [{port: 80}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: causeway}
spec: {controllerName: causeway.dev/gateway}
---
apiVersion: v1
kind: Nonsense
metadata: {name: x}
`)
	b := decoded("sub/b.yaml", `
apiVersion: v1
kind: Service
metadata: {name: db}
---
apiVersion: v1
kind: Service
metadata: {name: app}
spec: {ports: [{port: 9999}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: causeway}
spec: {controllerName: other.dev/gateway}
`)
	if len(a.Problems) != 1 || len(b.Problems) != 0 {
		t.Fatalf("setup: problems a=%v b=%v", a.Problems, b.Problems)
	}
	m := Merge(a, nil, b)

	var names []string
	for _, s := range m.Services {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, ","); got != "app,db" {
		t.Errorf("services %s, want app,db (file order, duplicate dropped)", got)
	}
	if m.Services[0].Spec.Ports[0].Port != 80 {
		t.Errorf("duplicate kept the second copy (port %d)", m.Services[0].Spec.Ports[0].Port)
	}
	if len(m.GatewayClasses) != 1 || m.GatewayClasses[0].Spec.ControllerName != "causeway.dev/gateway" {
		t.Errorf("gatewayclasses: %+v", m.GatewayClasses)
	}
	wantSrc := map[status.Ref]status.Source{
		{Kind: "Service", Namespace: "default", Name: "app"}: {File: "a.yaml", Doc: 1},
		{Kind: "GatewayClass", Name: "causeway"}:             {File: "a.yaml", Doc: 2},
		{Kind: "Service", Namespace: "default", Name: "db"}:  {File: "sub/b.yaml", Doc: 1},
	}
	if len(m.Sources) != len(wantSrc) {
		t.Errorf("sources %v, want %v", m.Sources, wantSrc)
	}
	for ref, src := range wantSrc {
		if m.Source(ref) != src {
			t.Errorf("source of %s = %v, want %v", ref, m.Source(ref), src)
		}
	}

	// a's own problem first, then one per duplicate naming both places.
	if len(m.Problems) != 3 {
		t.Fatalf("problems: %+v", m.Problems)
	}
	if !strings.Contains(m.Problems[0].Message, "Nonsense") {
		t.Errorf("first problem should be a's: %+v", m.Problems[0])
	}
	dups := map[string]Problem{}
	for _, p := range m.Problems[1:] {
		dups[p.Ref.String()] = p
	}
	for ref, want := range map[string]struct {
		src  status.Source
		prev string
	}{
		"Service/default/app":   {status.Source{File: "sub/b.yaml", Doc: 2}, "a.yaml#1"},
		"GatewayClass/causeway": {status.Source{File: "sub/b.yaml", Doc: 3}, "a.yaml#2"},
	} {
		p, ok := dups[ref]
		if !ok {
			t.Errorf("no duplicate problem for %s", ref)
			continue
		}
		if p.Source != want.src || !strings.Contains(p.Message, "duplicate") || !strings.Contains(p.Message, want.prev) {
			t.Errorf("problem for %s = %+v, want at %v naming %s", ref, p, want.src, want.prev)
		}
	}

	// The parts are left as they were.
	if len(b.Services) != 2 || len(b.Problems) != 0 {
		t.Errorf("Merge modified a part: %d services, %d problems", len(b.Services), len(b.Problems))
	}
}

func TestMergeEmpty(t *testing.T) {
	m := Merge()
	if m == nil || m.Sources == nil || len(m.Services) != 0 || len(m.Problems) != 0 {
		t.Fatalf("Merge() = %+v", m)
	}
}

// Merging the per-file snapshots gives what Decode gives for the same files
// read in order, when there are no duplicates.
func TestMergeMatchesDecode(t *testing.T) {
	files := []struct{ name, data string }{
		{"1.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: team}\n"},
		{"2.yaml", "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n---\nkind: Broken\n"},
	}
	whole := New()
	var parts []*Snapshot
	for _, f := range files {
		whole.Decode(f.name, []byte(f.data))
		parts = append(parts, decoded(f.name, f.data))
	}
	m := Merge(parts...)
	if len(m.Namespaces) != 1 || len(m.Services) != 1 || len(m.HTTPRoutes) != 1 {
		t.Fatalf("merged: %d ns, %d svc, %d routes", len(m.Namespaces), len(m.Services), len(m.HTTPRoutes))
	}
	if len(m.Sources) != len(whole.Sources) {
		t.Errorf("sources %v, want %v", m.Sources, whole.Sources)
	}
	for ref, src := range whole.Sources {
		if m.Sources[ref] != src {
			t.Errorf("source of %s = %v, want %v", ref, m.Sources[ref], src)
		}
	}
	if len(m.Problems) != len(whole.Problems) || m.Problems[0] != whole.Problems[0] {
		t.Errorf("problems %+v, want %+v", m.Problems, whole.Problems)
	}
}

// TestMergeCoversEveryKind guards against a kind added to Snapshot but not
// to Merge (the provider would silently drop it): one object of every kind,
// decoded from one file, must survive a Merge.
func TestMergeCoversEveryKind(t *testing.T) {
	var docs []string
	for kind, av := range map[string]string{
		"GatewayClass": "gateway.networking.k8s.io/v1", "Gateway": "gateway.networking.k8s.io/v1",
		"HTTPRoute": "gateway.networking.k8s.io/v1", "GRPCRoute": "gateway.networking.k8s.io/v1",
		"TLSRoute": "gateway.networking.k8s.io/v1", "TCPRoute": "gateway.networking.k8s.io/v1alpha2",
		"UDPRoute": "gateway.networking.k8s.io/v1alpha2", "ReferenceGrant": "gateway.networking.k8s.io/v1",
		"Namespace": "v1", "Service": "v1", "Secret": "v1", "EndpointSlice": "discovery.k8s.io/v1",
		"Backend": "causeway.dev/v1alpha1", "ConfigMap": "v1", "ClientTrafficPolicy": "causeway.dev/v1alpha1",
		"BackendTrafficPolicy": "causeway.dev/v1alpha1", "BackendTLSPolicy": "gateway.networking.k8s.io/v1",
		"ListenerSet": "gateway.networking.k8s.io/v1",
	} {
		docs = append(docs, "apiVersion: "+av+"\nkind: "+kind+"\nmetadata: {name: x}\n")
	}
	s := New()
	s.Decode("all.yaml", []byte(strings.Join(docs, "---\n")))
	if len(s.Problems) != 0 {
		t.Fatalf("decode problems: %+v", s.Problems)
	}
	m := Merge(s)
	v, mv := reflect.ValueOf(s).Elem(), reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if f.Type.Kind() != reflect.Slice || f.Name == "Problems" {
			continue
		}
		if v.Field(i).Len() != 1 {
			t.Errorf("decoding did not fill Snapshot.%s: add the kind to this test", f.Name)
		}
		if mv.Field(i).Len() != v.Field(i).Len() {
			t.Errorf("Merge drops Snapshot.%s", f.Name)
		}
	}
}
