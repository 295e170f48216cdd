package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"testing"

	"causeway.dev/causeway/test/testcert"
)

// tlsBackend serves over TLS with the given certificate on loopback and
// answers with the SNI it was reached with.
func tlsBackend(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "tls backend, sni="+r.TLS.ServerName)
		}),
		ErrorLog: log.New(io.Discard, "", 0), // refused handshakes are the point
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// serviceYAML is a Service with one port named https (443) and its
// EndpointSlice pointing at addr.
func serviceYAML(name, addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: %[1]s}
spec:
  ports: [{name: https, port: 443}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %[1]s-1
  labels: {kubernetes.io/service-name: %[1]s}
addressType: IPv4
ports: [{name: https, port: %[3]s}]
endpoints: [{addresses: [%[2]s]}]
`, name, host, port)
}

// TestBackendTLSPolicy: a BackendTLSPolicy with a ConfigMap CA reaches a
// TLS backend; one whose subjectAltNames the backend's certificate lacks
// gets 503 (UF) and one clear log line naming the cluster and the reason,
// however many requests fail.
func TestBackendTLSPolicy(t *testing.T) {
	be := testcert.SelfSigned(t, "backend.internal")
	addr := tlsBackend(t, be.TLS)
	port := freePort(t)
	dir := t.TempDir()
	ca := strings.ReplaceAll(strings.TrimSpace(string(be.CertPEM)), "\n", "\n    ")
	writeFile(t, dir, "all.yaml", gatewayYAML(port)+"---\n"+serviceYAML("good", addr)+"---\n"+serviceYAML("badsan", addr)+`---
apiVersion: v1
kind: ConfigMap
metadata: {name: backend-ca}
data:
  ca.crt: |
    `+ca+`
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: good}
spec:
  targetRefs: [{group: "", kind: Service, name: good, sectionName: https}]
  validation:
    caCertificateRefs: [{group: "", kind: ConfigMap, name: backend-ca}]
    hostname: backend.internal
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: badsan}
spec:
  targetRefs: [{group: "", kind: Service, name: badsan}]
  validation:
    caCertificateRefs: [{group: "", kind: ConfigMap, name: backend-ca}]
    hostname: backend.internal
    subjectAltNames: [{type: Hostname, hostname: other.internal}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {value: /good}}]
    backendRefs: [{name: good, port: 443}]
  - matches: [{path: {value: /badsan}}]
    backendRefs: [{name: badsan, port: 443}]
`)
	g := startGateway(t, dir, "--access-log", "stdout")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	resp, body := get(t, base+"/good")
	if resp.StatusCode != 200 || body != "tls backend, sni=backend.internal" {
		t.Fatalf("/good: %d %q", resp.StatusCode, body)
	}
	for range 3 {
		resp, body = get(t, base+"/badsan")
		if resp.StatusCode != 503 {
			t.Fatalf("/badsan: %d %q, want 503", resp.StatusCode, body)
		}
	}
	waitFor(t, "access log line with flag UF for /badsan", func() bool {
		for _, e := range g.accessLog() {
			if e["path"] == "/badsan" && e["status"] == float64(503) && strings.Contains(fmt.Sprint(e["flags"]), "UF") {
				return true
			}
		}
		return false
	})
	logs := g.stderr.String()
	if n := strings.Count(logs, "upstream TLS handshake failed"); n != 1 {
		t.Errorf("%d handshake failure log lines, want exactly 1:\n%s", n, logs)
	}
	for _, want := range []string{"service/default/badsan/443", "other.internal"} {
		if !strings.Contains(logs, want) {
			t.Errorf("gateway log lacks %q:\n%s", want, logs)
		}
	}
	// The policy's status is in the admin API.
	if st := g.get("/status"); !strings.Contains(st, "BackendTLSPolicy") {
		t.Errorf("admin /status does not list the BackendTLSPolicies:\n%.2000s", st)
	}
}
