package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const apiDir = "../api/v1alpha1"

// kinds are the root types of api/v1alpha1 and their CRD files.
var kinds = map[string]string{
	"Backend":              "crds/causeway.dev_backends.yaml",
	"ClientTrafficPolicy":  "crds/causeway.dev_clienttrafficpolicies.yaml",
	"BackendTrafficPolicy": "crds/causeway.dev_backendtrafficpolicies.yaml",
}

// TestCRDsFresh fails when api/v1alpha1 changed after generate.sh last
// ran, or when the chart's copy of the CRDs differs from crds/.
func TestCRDsFresh(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(apiDir, "*.go"))
	slices.Sort(files)
	h := sha256.New()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	want, err := os.ReadFile("crds/sources.sha256")
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.TrimSpace(string(want)) {
		t.Errorf("api/v1alpha1 changed since the CRDs were generated: run deploy/generate.sh")
	}
	for _, f := range kinds {
		a, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join("helm/causeway", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("helm/causeway/%s differs from %s: run deploy/generate.sh", f, f)
		}
	}
}

// goType is a struct or named type of api/v1alpha1 as its source says.
type goType struct {
	markers  []string
	fields   []goField // nil for non-struct types
	isStruct bool
}

type goField struct {
	name     string // JSON name
	required bool   // no omitempty
	typ      ast.Expr
	markers  []string
}

// parseAPI reads the types and kubebuilder markers of api/v1alpha1.
func parseAPI(t *testing.T) map[string]*goType {
	t.Helper()
	fset := token.NewFileSet()
	files, _ := filepath.Glob(filepath.Join(apiDir, "*.go"))
	types := map[string]*goType{}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") || strings.HasPrefix(filepath.Base(path), "zz_") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, s := range gd.Specs {
				ts := s.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil {
					doc = gd.Doc
				}
				gt := &goType{markers: markers(doc)}
				if st, ok := ts.Type.(*ast.StructType); ok {
					gt.isStruct = true
					for _, fl := range st.Fields.List {
						if fl.Tag == nil {
							continue
						}
						tag, _ := strconv.Unquote(fl.Tag.Value)
						js := reflect.StructTag(tag).Get("json")
						name, opts, _ := strings.Cut(js, ",")
						if name == "" || name == "-" {
							continue
						}
						gt.fields = append(gt.fields, goField{name: name, typ: fl.Type, markers: markers(fl.Doc),
							required: !strings.Contains(opts, "omitempty")})
					}
				}
				types[ts.Name.Name] = gt
			}
		}
	}
	return types
}

func markers(cg *ast.CommentGroup) []string {
	if cg == nil {
		return nil
	}
	var out []string
	for _, c := range cg.List {
		if s, ok := strings.CutPrefix(c.Text, "// +"); ok {
			out = append(out, strings.TrimSpace(s))
		}
	}
	return out
}

type schema = map[string]any

func loadSchema(t *testing.T, file string) (crd, root schema) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &crd); err != nil {
		t.Fatal(err)
	}
	versions := crd["spec"].(schema)["versions"].([]any)
	return crd, versions[0].(schema)["schema"].(schema)["openAPIV3Schema"].(schema)
}

// TestSchemaFollowsTypes walks every kind's Go types and its CRD schema
// together: every JSON field has a property, fields without omitempty are
// required, and every validation marker shows in the schema with its value.
func TestSchemaFollowsTypes(t *testing.T) {
	types := parseAPI(t)
	checked := 0
	for kind, file := range kinds {
		crd, root := loadSchema(t, file)
		for _, m := range types[kind].markers {
			if cat, ok := strings.CutPrefix(m, "kubebuilder:resource:categories="); ok {
				got, _ := crd["spec"].(schema)["names"].(schema)["categories"].([]any)
				if !slices.Contains(got, any(cat)) {
					t.Errorf("%s: category %s missing from %v", file, cat, got)
				}
			}
		}
		if !slices.Contains(types[kind].markers, "kubebuilder:object:root=true") {
			t.Errorf("%s has no +kubebuilder:object:root=true", kind)
		}
		w := &walker{t: t, types: types, checked: &checked}
		w.field(kind, root, &ast.Ident{Name: kind}, nil)
	}
	if checked < 100 {
		t.Errorf("only %d markers and fields checked: the walk is broken", checked)
	}
}

type walker struct {
	t       *testing.T
	types   map[string]*goType
	checked *int
}

// field checks node, the schema of a field of Go type typ with markers.
func (w *walker) field(path string, node schema, typ ast.Expr, marks []string) {
	for _, m := range marks {
		w.marker(path, node, m)
	}
	switch x := typ.(type) {
	case *ast.StarExpr:
		w.field(path, node, x.X, nil)
	case *ast.ArrayType:
		items, _ := node["items"].(schema)
		if items == nil {
			w.t.Errorf("%s: list without items in the schema", path)
			return
		}
		w.field(path+"[]", items, x.Elt, nil)
	case *ast.MapType:
		if v, _ := node["additionalProperties"].(schema); v != nil {
			w.field(path+"{}", v, x.Value, nil)
		} else {
			w.t.Errorf("%s: map without additionalProperties in the schema", path)
		}
	case *ast.Ident:
		gt := w.types[x.Name]
		if gt == nil {
			return // a predeclared type
		}
		for _, m := range gt.markers {
			w.marker(path, node, m)
		}
		if !gt.isStruct {
			return
		}
		props, _ := node["properties"].(schema)
		required, _ := node["required"].([]any)
		for _, f := range gt.fields {
			if x.Name == path && f.name != "spec" { // a root kind: only its spec is ours
				continue
			}
			*w.checked++
			fp := path + "." + f.name
			sub, _ := props[f.name].(schema)
			if sub == nil {
				w.t.Errorf("%s: no property in the CRD schema: run deploy/generate.sh", fp)
				continue
			}
			if f.required != slices.Contains(required, any(f.name)) {
				w.t.Errorf("%s: required is %v in Go (omitempty), not in the schema", fp, f.required)
			}
			w.field(fp, sub, f.typ, f.markers)
		}
	}
}

// marker checks that the validation one marker asks for is in node.
func (w *walker) marker(path string, node schema, m string) {
	t := w.t
	name, val, _ := strings.Cut(m, "=")
	if name == "listType" {
		*w.checked++
		if node["x-kubernetes-list-type"] != val {
			t.Errorf("%s: +%s not in the schema", path, m)
		}
		return
	}
	v, ok := strings.CutPrefix(name, "kubebuilder:validation:")
	if !ok {
		return // not a validation marker (object, resource, groupName)
	}
	if item, ok := strings.CutPrefix(v, "items:"); ok {
		node, _ = node["items"].(schema)
		v = item
	}
	*w.checked++
	if v == "XValidation:rule" {
		rule, err := strconv.Unquote(mustQuotedPrefix(t, val))
		if err != nil {
			t.Fatalf("%s: +%s: %v", path, m, err)
		}
		rules, _ := node["x-kubernetes-validations"].([]any)
		for _, r := range rules {
			if r.(schema)["rule"] == rule {
				return
			}
		}
		t.Errorf("%s: CEL rule %q not in the schema", path, rule)
		return
	}
	key := map[string]string{"Minimum": "minimum", "Maximum": "maximum", "MinLength": "minLength", "MaxLength": "maxLength",
		"MinItems": "minItems", "MaxItems": "maxItems", "Pattern": "pattern", "Enum": "enum", "Type": "type"}[v]
	if key == "" {
		t.Errorf("%s: +%s: marker unknown to this test", path, m)
		return
	}
	got, present := node[key]
	if !present {
		t.Errorf("%s: +%s: no %s in the schema: run deploy/generate.sh", path, m, key)
		return
	}
	var want any
	switch key {
	case "pattern":
		want = strings.Trim(val, "`")
	case "type":
		want = val
	case "enum":
		var vals []any
		for _, e := range strings.Split(val, ";") {
			vals = append(vals, strings.Trim(e, `"`))
		}
		want = vals
	default:
		n, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Fatalf("%s: +%s: %v", path, m, err)
		}
		want = n
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: +%s: schema has %s %v", path, m, key, got)
	}
}

func mustQuotedPrefix(t *testing.T, s string) string {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		t.Fatalf("marker value %q: %v", s, err)
	}
	return q
}
