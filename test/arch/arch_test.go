package arch

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

type pkg struct {
	ImportPath string
	Doc        string
	Imports    []string
	Name       string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "causeway.dev/causeway/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return pkgs
}

const mod = "causeway.dev/causeway/"

func isStd(path string) bool { return !strings.Contains(strings.Split(path, "/")[0], ".") }

func TestImportRules(t *testing.T) {
	dataPlane := []string{"internal/proxy", "internal/route", "internal/filter", "internal/upstream"}
	controlOnly := []string{mod + "internal/translate", mod + "internal/provider", "k8s.io/client-go", "sigs.k8s.io/controller-runtime"}
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(p.ImportPath, mod)
		switch {
		case rel == "internal/ir" || rel == "internal/status":
			for _, imp := range p.Imports {
				if !isStd(imp) {
					t.Errorf("%s imports %s: it may import only the standard library", rel, imp)
				}
			}
		case rel == "internal/resource":
			for _, imp := range p.Imports {
				if !isStd(imp) && !strings.HasPrefix(imp, "k8s.io/api/") && !strings.HasPrefix(imp, "k8s.io/apimachinery/") &&
					!strings.HasPrefix(imp, "sigs.k8s.io/gateway-api/apis/") && imp != "sigs.k8s.io/yaml" && imp != "sigs.k8s.io/json" &&
					imp != mod+"api/v1alpha1" && imp != mod+"internal/status" {
					t.Errorf("internal/resource imports %s: only API types and YAML decoding belong there", imp)
				}
			}
		}
		for _, imp := range p.Imports { // p.Imports leaves out _test.go files
			if imp == mod+"test/testcert" {
				t.Errorf("%s imports test/testcert: only tests may", rel)
			}
		}
		for _, dp := range dataPlane {
			if rel != dp && !strings.HasPrefix(rel, dp+"/") {
				continue
			}
			for _, imp := range p.Imports {
				for _, bad := range controlOnly {
					if imp == bad || strings.HasPrefix(imp, bad+"/") {
						t.Errorf("data-plane package %s imports %s", rel, imp)
					}
				}
				if strings.HasPrefix(imp, "sigs.k8s.io/gateway-api") || strings.HasPrefix(imp, "k8s.io/") {
					t.Errorf("data-plane package %s imports %s: the proxy knows only the IR", rel, imp)
				}
			}
		}
	}
}

func TestPackagesAreDocumented(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.Doc == "" {
			t.Errorf("package %s has no doc comment", p.ImportPath)
		}
	}
}

// TestNoTypedClientsets keeps client-go's typed clientsets, informer
// factories and discovery client out of the binary: their schemes register
// every Kubernetes API type at init and doubled the idle RSS of every mode
// (the plain gateway included) when they were linked.
func TestNoTypedClientsets(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "causeway.dev/causeway/cmd/causeway").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"k8s.io/client-go/kubernetes", "k8s.io/client-go/informers", "k8s.io/client-go/discovery", "sigs.k8s.io/gateway-api/pkg/client"} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") {
				t.Errorf("cmd/causeway links %s; use the dynamic client and tools/cache (see internal/provider/kube)", dep)
			}
		}
	}
}
