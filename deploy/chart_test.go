package deploy

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"strings"
	"testing"
	"text/template"

	"sigs.k8s.io/yaml"
)

// renderChart renders the chart with its default values, as `helm
// template causeway --namespace causeway-system --include-crds` does,
// with Go's text/template (Helm's engine) and the few template functions
// the chart uses. It keeps install.yaml honest without Helm in the test.
func renderChart(t *testing.T) []map[string]any {
	t.Helper()
	read := func(name string) []byte {
		b, err := fs.ReadFile(Chart, path.Join("helm/causeway", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var chart, values map[string]any
	if err := yaml.Unmarshal(read("Chart.yaml"), &chart); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(read("values.yaml"), &values); err != nil {
		t.Fatal(err)
	}
	data := map[string]any{
		"Release": map[string]any{"Name": "causeway", "Namespace": "causeway-system"},
		"Chart":   map[string]any{"Name": chart["name"], "Version": chart["version"], "AppVersion": chart["appVersion"]},
		"Values":  values,
	}
	tpl := template.New("chart").Option("missingkey=error")
	tpl.Funcs(template.FuncMap{
		"include": func(name string, v any) (string, error) {
			var b bytes.Buffer
			err := tpl.ExecuteTemplate(&b, name, v)
			return b.String(), err
		},
		"nindent": func(n int, s string) string {
			pad := strings.Repeat(" ", n)
			return "\n" + pad + strings.ReplaceAll(s, "\n", "\n"+pad)
		},
		"toYaml": func(v any) (string, error) {
			b, err := yaml.Marshal(v)
			return strings.TrimSuffix(string(b), "\n"), err
		},
		"default": func(d any, v ...any) any {
			if len(v) == 0 || v[0] == nil || v[0] == "" || v[0] == false {
				return d
			}
			return v[0]
		},
		"quote": func(v any) string { return fmt.Sprintf("%q", fmt.Sprint(v)) },
	})
	names, _ := fs.Glob(Chart, "helm/causeway/templates/*")
	for _, n := range names {
		if _, err := tpl.New(path.Base(n)).Parse(string(read(strings.TrimPrefix(n, "helm/causeway/")))); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	var out bytes.Buffer
	crds, _ := fs.Glob(Chart, "helm/causeway/crds/*.yaml")
	for _, n := range crds {
		out.WriteString("\n---\n")
		out.Write(read(strings.TrimPrefix(n, "helm/causeway/")))
	}
	for _, n := range names {
		if strings.HasPrefix(path.Base(n), "_") {
			continue
		}
		out.WriteString("\n---\n")
		if err := tpl.ExecuteTemplate(&out, path.Base(n), data); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	return splitDocs(t, out.Bytes())
}

// splitDocs parses a multi-document YAML stream, skipping empty documents.
func splitDocs(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var docs []map[string]any
	for _, d := range strings.Split("\n"+string(b), "\n---") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("parsing %q: %v", d, err)
		}
		if m != nil {
			docs = append(docs, m)
		}
	}
	return docs
}

func docKey(m map[string]any) string {
	md, _ := m["metadata"].(map[string]any)
	return fmt.Sprintf("%v/%v/%v", m["kind"], md["namespace"], md["name"])
}

// TestInstallMatchesChart fails when install.yaml is not the chart's
// rendering (plus the Namespace it installs into).
func TestInstallMatchesChart(t *testing.T) {
	want := map[string]map[string]any{}
	for _, d := range renderChart(t) {
		want[docKey(d)] = d
	}
	want["Namespace/<nil>/causeway-system"] = map[string]any{"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": "causeway-system"}}
	got := map[string]map[string]any{}
	for _, d := range splitDocs(t, Install) {
		got[docKey(d)] = d
	}
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("install.yaml lacks %s: run deploy/generate.sh", k)
		} else if !reflect.DeepEqual(g, w) {
			t.Errorf("install.yaml's %s differs from the chart's: run deploy/generate.sh", k)
		}
	}
	for k := range got {
		if want[k] == nil {
			t.Errorf("install.yaml has %s, which the chart does not render", k)
		}
	}
	for _, k := range []string{"Deployment/causeway-system/causeway", "ServiceAccount/causeway-system/causeway",
		"ClusterRole/<nil>/causeway-controller", "ClusterRoleBinding/<nil>/causeway-controller",
		"Role/causeway-system/causeway-leader-election", "CustomResourceDefinition/<nil>/backendtrafficpolicies.causeway.dev"} {
		if want[k] == nil {
			t.Errorf("the chart renders no %s", k)
		}
	}
}
