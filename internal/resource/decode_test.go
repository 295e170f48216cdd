package resource

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"causeway.dev/causeway/internal/status"
)

func TestDecode(t *testing.T) {
	s := New()
	s.Decode("a.yaml", []byte(`# leading comment
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
---
# a document of only comments is not counted
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: r2, namespace: other}
spec:
  rules: [{backendRefs: [{name: s, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: typo}
spec:
  rulez: []
---
apiVersion: v1
kind: Pod
metadata: {name: c}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
---
kind: Service
metadata: {name: noversion}
---
apiVersion: v1
kind: Service
metadata: {}
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: g, namespace: other}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}]
  to: [{group: "", kind: Service}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: c, namespace: ignored}
spec: {controllerName: x}
`))
	if len(s.HTTPRoutes) != 2 || len(s.ReferenceGrants) != 1 || len(s.GatewayClasses) != 1 {
		t.Fatalf("decoded %d routes, %d grants, %d classes", len(s.HTTPRoutes), len(s.ReferenceGrants), len(s.GatewayClasses))
	}
	if r := s.HTTPRoutes[0]; r.Namespace != "default" || r.Name != "r" || len(r.Spec.ParentRefs) != 1 {
		t.Errorf("first route: %s/%s %+v", r.Namespace, r.Name, r.Spec)
	}
	if r := s.HTTPRoutes[1]; r.Namespace != "other" || *r.Spec.Rules[0].BackendRefs[0].Port != 80 {
		t.Errorf("v1beta1 route decoded as %s/%s", r.Namespace, r.Name)
	}
	if src := s.Source(status.Ref{Kind: "HTTPRoute", Namespace: "other", Name: "r2"}); src.File != "a.yaml" || src.Doc != 2 {
		t.Errorf("source of r2 = %v, want a.yaml#2", src)
	}
	if gc := s.GatewayClasses[0]; gc.Namespace != "" {
		t.Errorf("cluster-scoped GatewayClass kept namespace %q", gc.Namespace)
	}
	want := []struct {
		doc int
		has string
	}{
		{3, `unknown field "spec.rulez"`},
		{4, "Pod"},
		{5, "duplicate"},
		{6, "apiVersion and kind are required"},
		{7, "metadata.name is required"},
	}
	if len(s.Problems) != len(want) {
		t.Fatalf("problems: %+v", s.Problems)
	}
	for i, w := range want {
		p := s.Problems[i]
		if p.Source.Doc != w.doc || !strings.Contains(p.Message, w.has) {
			t.Errorf("problem %d = %+v, want doc %d containing %q", i, p, w.doc, w.has)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		path := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	svc := "apiVersion: v1\nkind: Service\nmetadata: {name: %s}\n"
	write("b.yaml", strings.Replace(svc, "%s", "b", 1))
	write("sub/a.yml", strings.Replace(svc, "%s", "a", 1))
	write(".hidden/c.yaml", strings.Replace(svc, "%s", "c", 1))
	write("notes.txt", "not yaml")
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Services) != 2 || s.Services[0].Name != "b" || s.Services[1].Name != "a" {
		t.Fatalf("services %v, want b then sub/a (lexical path order) and no hidden dir", names(s))
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("Load of a missing directory succeeded")
	}
}

func names(s *Snapshot) []string {
	var out []string
	for _, o := range s.Services {
		out = append(out, o.Name)
	}
	return out
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec: {rules: [{matches: [{path: {value: /}}]}]}\n---\nkind: x\n"))
	f.Add([]byte("apiVersion: causeway.dev/v1alpha1\nkind: Backend\nmetadata: {name: b}\nspec: {endpoints: [{ip: {address: 1.2.3.4, port: 80}}]}"))
	f.Add([]byte("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {tls.crt: !!binary AAAA}\n"))
	f.Add([]byte("---\n---\n\x00\n: :\n- [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := New()
		s.Decode("fuzz.yaml", data)
		for ref, src := range s.Sources {
			if src.File != "fuzz.yaml" || src.Doc < 1 || ref.Name == "" {
				t.Fatalf("bad source %v for %v", src, ref)
			}
		}
	})
}
