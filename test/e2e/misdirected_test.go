package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"causeway.dev/causeway/test/testbin"
	"causeway.dev/causeway/test/testcert"
)

// TestMisdirectedRequests: the Gateway and routes of the Gateway API
// conformance test HTTPRouteHTTPSListenerDetectMisdirectedRequests (four
// HTTPS listeners on one port: no hostname, second-example.org,
// *.wildcard.org and fourth-example.wildcard.org), driven by curl over
// HTTP/1.1 and HTTP/2 with the TLS server name (--resolve and the URL) and
// the Host header set apart. A Host that selects another listener than
// the server name is answered 421 without reaching a backend, and logged
// with flag MR.
func TestMisdirectedRequests(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is not installed (apt-get install curl)")
	}
	names := []string{"example.org", "second-example.org", "unknown-example.org", "*.wildcard.org"}
	ca := testcert.NewCA(t, "Misdirected CA")
	server := ca.Server(t, "example.org", names...)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	port := freePort(t)
	dir := t.TempDir()
	cfg := testbin.GatewayYAML("same-namespace-with-https-listener") + fmt.Sprintf(`  listeners:
  - {name: https, port: %[1]d, protocol: HTTPS, tls: {certificateRefs: [{name: server}]}}
  - {name: https-with-hostname, port: %[1]d, hostname: second-example.org, protocol: HTTPS, tls: {certificateRefs: [{name: server}]}}
  - {name: https-with-wildcard-hostname, port: %[1]d, hostname: "*.wildcard.org", protocol: HTTPS, tls: {certificateRefs: [{name: server}]}}
  - {name: https-with-hostname-matching-wildcard, port: %[1]d, hostname: fourth-example.wildcard.org, protocol: HTTPS, tls: {certificateRefs: [{name: server}]}}
`, port)
	for i, r := range []struct{ section, hostnames, backend string }{
		{"https", "[example.org]", "v1"},
		{"https-with-hostname", "[]", "v2"},
		{"https-with-wildcard-hostname", "[]", "v3"},
		{"https-with-hostname-matching-wildcard", "[]", "v4"},
	} {
		cfg += fmt.Sprintf(`---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: test-%d}
spec:
  parentRefs: [{name: same-namespace-with-https-listener, sectionName: %s}]
  hostnames: %s
  rules:
  - matches: [{path: {type: PathPrefix, value: /detect-misdirected-requests}}]
    backendRefs: [{group: causeway.dev, kind: Backend, name: %s}]
`, i+1, r.section, r.hostnames, r.backend)
	}
	for _, b := range []string{"v1", "v2", "v3", "v4"} {
		cfg += "---\n" + backendYAML(b, backend(t, b, nil))
	}
	cfg += "---\n" + secretYAML("server", server.CertPEM, server.KeyPEM)
	writeFile(t, dir, "all.yaml", cfg)
	g := startGateway(t, dir)
	g.wantNoProblems()

	cases := []struct {
		sni, host string
		code      string
		backend   string
	}{
		{"example.org", "example.org", "200", "v1"},
		{"example.org", "second-example.org", "421", ""},
		{"example.org", "unknown-example.org", "404", ""},
		{"second-example.org", "second-example.org", "200", "v2"},
		{"second-example.org", "example.org", "421", ""},
		{"second-example.org", "unknown-example.org", "421", ""},
		{"third-example.wildcard.org", "third-example.wildcard.org", "200", "v3"},
		{"third-example.wildcard.org", "fith-example.wildcard.org", "200", "v3"},
		{"third-example.wildcard.org", "fourth-example.wildcard.org", "421", ""},
		{"third-example.wildcard.org", "second-example.org", "421", ""},
		{"third-example.wildcard.org", "unknown-example.org", "421", ""},
		{"fourth-example.wildcard.org", "fourth-example.wildcard.org", "200", "v4"},
		{"fourth-example.wildcard.org", "fith-example.wildcard.org", "421", ""},
		{"unknown-example.org", "example.org", "200", "v1"},
		{"unknown-example.org", "unknown-example.org", "404", ""},
	}
	want421 := 0
	for _, proto := range []string{"--http1.1", "--http2"} {
		for _, tc := range cases {
			out := filepath.Join(t.TempDir(), "body")
			cmd := exec.Command(curl, "-sS", "--max-time", "10", proto, "--cacert", caFile,
				"--resolve", fmt.Sprintf("%s:%d:127.0.0.1", tc.sni, port), "-H", "Host: "+tc.host,
				"-o", out, "-w", "%{http_code} %{http_version}",
				fmt.Sprintf("https://%s:%d/detect-misdirected-requests", tc.sni, port))
			var se strings.Builder
			cmd.Stderr = &se
			o, err := cmd.Output()
			if err != nil {
				t.Fatalf("curl %s SNI %s Host %s: %v: %s", proto, tc.sni, tc.host, err, se.String())
			}
			b, _ := os.ReadFile(out)
			code, version, _ := strings.Cut(string(o), " ")
			if wantV := strings.TrimPrefix(proto, "--http"); version != wantV {
				t.Errorf("curl %s: spoke HTTP/%s", proto, version)
			}
			if code != tc.code {
				t.Errorf("curl %s SNI %s Host %s: status %s (%q), want %s", proto, tc.sni, tc.host, code, b, tc.code)
				continue
			}
			if tc.backend != "" {
				if e := decodeEcho(t, string(b)); e.Backend != tc.backend {
					t.Errorf("curl %s SNI %s Host %s: backend %s, want %s", proto, tc.sni, tc.host, e.Backend, tc.backend)
				}
			} else if strings.Contains(string(b), `"backend"`) {
				t.Errorf("curl %s SNI %s Host %s: a backend answered %q", proto, tc.sni, tc.host, b)
			}
			if tc.code == "421" {
				want421++
			}
		}
	}

	// The access log is written asynchronously: wait for every line.
	var got421 int
	waitFor(t, "every request in the access log", func() bool {
		got421 = 0
		n := 0
		for _, e := range g.accessLog() {
			if e["path"] != "/detect-misdirected-requests" {
				continue
			}
			n++
			if e["status"] == float64(421) {
				got421++
				if e["flags"] != "MR" {
					t.Fatalf("421 logged with flags %v", e["flags"])
				}
			}
		}
		return n == 2*len(cases)
	})
	if got421 != want421 {
		t.Errorf("access log: %d entries with status 421, want %d", got421, want421)
	}
}
