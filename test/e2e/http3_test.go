package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"causeway.dev/causeway/test/testbin"
	"causeway.dev/causeway/test/testcert"
)

// TestHTTP3: a ClientTrafficPolicy switches HTTP/3 on for an HTTPS
// listener; quic-go's HTTP/3 client reaches the backend through the
// binary over QUIC, and the listener's HTTP/1.1 and HTTP/2 responses
// advertise the service with Alt-Svc.
func TestHTTP3(t *testing.T) {
	be := backend(t, "h3", nil)
	cert := testcert.SelfSigned(t, "h3.example.com")
	port := freePort(t)
	dir := t.TempDir()
	writeFile(t, dir, "all.yaml", testbin.GatewayYAML("gw")+fmt.Sprintf(`  listeners:
  - {name: https, protocol: HTTPS, port: %d, tls: {certificateRefs: [{name: cert}]}}
---
apiVersion: causeway.dev/v1alpha1
kind: ClientTrafficPolicy
metadata: {name: h3}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw, sectionName: https}]
  http3: {enabled: true}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{group: causeway.dev, kind: Backend, name: app}]}]
---
`, port)+backendYAML("app", be)+"---\n"+secretYAML("cert", cert.CertPEM, cert.KeyPEM))
	g := startGateway(t, dir, "--access-log", "stdout")
	g.wantNoProblems()
	tlsConf := &tls.Config{RootCAs: certPool(cert.CertPEM), ServerName: "h3.example.com"}
	url := fmt.Sprintf("https://127.0.0.1:%d", port)

	t.Run("Alt-Svc on TCP", func(t *testing.T) {
		for _, h2 := range []bool{false, true} {
			var p http.Protocols
			p.SetHTTP1(!h2)
			p.SetHTTP2(h2)
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf.Clone(), Protocols: &p}}
			resp, err := c.Get(url + "/tcp")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			c.CloseIdleConnections()
			want := fmt.Sprintf(`h3=":%d"`, port)
			if alt := resp.Header.Get("Alt-Svc"); resp.StatusCode != 200 || !strings.HasPrefix(alt, want) || !strings.Contains(alt, "ma=") {
				t.Fatalf("%s: status %d, Alt-Svc %q; want 200 and %s; ma=...", resp.Proto, resp.StatusCode, alt, want)
			}
		}
	})
	t.Run("request over QUIC", func(t *testing.T) {
		tr := &http3.Transport{TLSClientConfig: tlsConf.Clone()}
		defer tr.Close()
		c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
		req, err := http.NewRequest("GET", url+"/over/quic?x=1", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Test", "h3")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("HTTP/3 request through the gateway: %v\n%s", err, g.stderr.String())
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.ProtoMajor != 3 {
			t.Fatalf("status %d over %s: %s", resp.StatusCode, resp.Proto, body)
		}
		e := decodeEcho(t, string(body))
		if e.Backend != "h3" || e.Path != "/over/quic" || e.Query != "x=1" || e.Headers["X-Test"][0] != "h3" {
			t.Fatalf("backend saw %+v", e)
		}
		waitFor(t, "an access log line for the HTTP/3 request", func() bool {
			for _, l := range g.accessLog() {
				if l["path"] == "/over/quic" && l["protocol"] == "HTTP/3.0" {
					return true
				}
			}
			return false
		})
	})
}
