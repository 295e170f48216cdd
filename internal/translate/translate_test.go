package translate

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
)

var update = flag.Bool("update", false, "rewrite the golden testdata/*.out.yaml files")

// golden is what a .out.yaml file holds.
type golden struct {
	IR     *ir.Config     `json:"ir"`
	Status *status.Report `json:"status"`
}

func translateFile(t testing.TB, path string) (*ir.Config, *status.Report) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := resource.New()
	s.Decode(filepath.Base(path), data)
	return Translate(s, Options{})
}

func TestGolden(t *testing.T) {
	ins, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil || len(ins) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			cfg, rep := translateFile(t, in)
			checkInvariants(t, cfg)
			got, err := yaml.Marshal(golden{IR: cfg, Status: rep})
			if err != nil {
				t.Fatal(err)
			}
			out := strings.TrimSuffix(in, ".in.yaml") + ".out.yaml"
			if *update {
				if err := os.WriteFile(out, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/translate -update)", err)
			}
			if d := cmp.Diff(string(want), string(got)); d != "" {
				t.Errorf("%s differs (-want +got); if intended, run go test ./internal/translate -update:\n%s", out, d)
			}
		})
	}
}

// TestDeterministic translates each input twice, once with its documents
// reversed within the file order the decoder keeps, and expects identical
// IR versions: output may not depend on map order or input order.
func TestDeterministic(t *testing.T) {
	ins, _ := filepath.Glob("testdata/*.in.yaml")
	for _, in := range ins {
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		docs := bytes.Split(data, []byte("\n---\n"))
		var rev [][]byte
		for i := len(docs) - 1; i >= 0; i-- {
			rev = append(rev, docs[i])
		}
		a, b := resource.New(), resource.New()
		a.Decode("x.yaml", data)
		b.Decode("x.yaml", bytes.Join(rev, []byte("\n---\n")))
		if len(a.Problems) > 0 {
			continue // duplicates resolve by order; not comparable
		}
		ca, _ := Translate(a, Options{})
		cb, _ := Translate(b, Options{})
		for i := 0; i < 3; i++ {
			cc, _ := Translate(a, Options{})
			if cc.Version != ca.Version {
				t.Fatalf("%s: two translations differ: %s vs %s", in, ca.Version, cc.Version)
			}
		}
		ja, _ := yaml.Marshal(ca)
		jb, _ := yaml.Marshal(cb)
		if d := cmp.Diff(string(ja), string(jb)); d != "" {
			t.Errorf("%s: output depends on document order (-forward +reversed):\n%s", in, d)
		}
	}
}

// TestCertificatesCarried checks the key material the JSON golden omits.
func TestCertificatesCarried(t *testing.T) {
	cfg, _ := translateFile(t, "testdata/tls.in.yaml")
	n := 0
	for _, l := range cfg.Listeners {
		if l.TLS == nil {
			continue
		}
		for _, c := range l.TLS.Certificates {
			n++
			if !bytes.Contains(c.CertPEM, []byte("BEGIN CERTIFICATE")) || !bytes.Contains(c.KeyPEM, []byte("PRIVATE KEY")) {
				t.Errorf("%s: certificate or key PEM missing", c.Origin)
			}
		}
	}
	if n == 0 {
		t.Fatal("no certificates in tls case")
	}
}

// checkInvariants holds for every translation, valid input or not.
func checkInvariants(t testing.TB, cfg *ir.Config) {
	t.Helper()
	if cfg == nil || cfg.Version == "" {
		t.Fatal("nil config or no version")
	}
	clusters := map[string]bool{}
	for _, c := range cfg.Clusters {
		if c.Name == "" || clusters[c.Name] {
			t.Fatalf("empty or duplicate cluster name %q", c.Name)
		}
		clusters[c.Name] = true
		for _, e := range c.Endpoints {
			n := 0
			for _, set := range []bool{e.Address != "", e.Hostname != "", e.Unix != ""} {
				if set {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("cluster %s: endpoint %+v has %d destinations", c.Name, e, n)
			}
		}
	}
	listeners := map[string]bool{}
	for _, l := range cfg.Listeners {
		if listeners[l.Name] {
			t.Fatalf("duplicate listener %s", l.Name)
		}
		listeners[l.Name] = true
		if l.Protocol == ir.ProtocolHTTPS && l.TLS == nil || l.TLS != nil && l.Protocol != ir.ProtocolHTTPS && l.Protocol != ir.ProtocolTLS {
			t.Fatalf("listener %s: protocol %s with TLS %v", l.Name, l.Protocol, l.TLS != nil)
		}
		for _, r := range l.L4Routes {
			for _, b := range r.Backends {
				if b.Cluster != "" && !clusters[b.Cluster] || b.Weight <= 0 {
					t.Fatalf("L4 route %s: backend %s (cluster %q, weight %d) invalid", r.Name, b.Name, b.Cluster, b.Weight)
				}
			}
		}
		if l.TLS != nil && len(l.TLS.Certificates) == 0 {
			t.Fatalf("listener %s: HTTPS without certificates", l.Name)
		}
		domains := map[string]bool{}
		for i, vh := range l.VirtualHosts {
			if domains[vh.Domain] {
				t.Fatalf("listener %s: duplicate domain %s", l.Name, vh.Domain)
			}
			domains[vh.Domain] = true
			if i > 0 && !domainLess(l.VirtualHosts[i-1].Domain, vh.Domain) {
				t.Fatalf("listener %s: virtual hosts out of order: %s before %s", l.Name, l.VirtualHosts[i-1].Domain, vh.Domain)
			}
			names := map[string]bool{}
			for _, r := range vh.Routes {
				if names[r.Name] {
					t.Fatalf("listener %s host %s: duplicate route %s", l.Name, vh.Domain, r.Name)
				}
				names[r.Name] = true
				for _, b := range r.Backends {
					if b.Cluster != "" && !clusters[b.Cluster] {
						t.Fatalf("route %s: backend cluster %s missing", r.Name, b.Cluster)
					}
					if b.Weight <= 0 {
						t.Fatalf("route %s: backend %s weight %d", r.Name, b.Name, b.Weight)
					}
				}
				for _, m := range r.Mirrors {
					if !clusters[m.Cluster] || m.Denominator < 1 || m.Numerator < 1 || m.Numerator > m.Denominator {
						t.Fatalf("route %s: bad mirror %+v", r.Name, m)
					}
				}
				if r.Redirect != nil && len(r.Backends) > 0 {
					t.Fatalf("route %s: redirect with backends", r.Name)
				}
			}
		}
	}
}

func FuzzTranslate(f *testing.F) {
	ins, _ := filepath.Glob("testdata/*.in.yaml")
	for _, in := range ins {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := resource.New()
		s.Decode("fuzz.yaml", data)
		cfg, rep := Translate(s, Options{})
		checkInvariants(t, cfg)
		again, _ := Translate(s, Options{})
		if again.Version != cfg.Version {
			t.Fatalf("not deterministic: %s vs %s", cfg.Version, again.Version)
		}
		for _, p := range rep.Problems() {
			_ = p.Error()
		}
	})
}
