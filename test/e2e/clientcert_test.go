package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"causeway.dev/causeway/test/testbin"
	"causeway.dev/causeway/test/testcert"
)

// indent puts PEM text under a YAML block scalar.
func indent(p []byte) string {
	return strings.ReplaceAll(strings.TrimSpace(string(p)), "\n", "\n    ")
}

// TestClientCertificates: a Gateway validating client certificates
// (spec.tls.frontend.default.validation with a ConfigMap CA) in front of
// an echo backend, driven by curl. A client with a certificate of that CA
// gets 200 and the backend sees X-Forwarded-Client-Cert in Envoy's format
// as each listener's ClientTrafficPolicy says (SanitizeSet: hash, subject
// and SANs; Forward: the certificate and chain too; Sanitize: nothing); a
// client without a certificate, or with one of another CA, is refused at
// the handshake; an X-Forwarded-Client-Cert sent by the client never
// reaches the backend.
func TestClientCertificates(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is not installed (apt-get install curl)")
	}
	var hits atomic.Int64
	be := backend(t, "mtls", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"backend": "mtls", "path": r.URL.Path, "headers": r.Header})
	})

	clientCA := testcert.NewCA(t, "Client CA")
	otherCA := testcert.NewCA(t, "Other CA")
	serverCA := testcert.NewCA(t, "Server CA")
	server := serverCA.Server(t, "mtls.example.com", "mtls.example.com")
	client := clientCA.Client(t, "client", "client.example", "spiffe://example.org/ns/default/sa/client")
	stranger := otherCA.Client(t, "client", "client.example", "spiffe://example.org/ns/default/sa/client")

	files := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	serverCAFile := write("server-ca.pem", serverCA.CertPEM)
	clientCrt, clientKey := write("client.crt", client.CertPEM), write("client.key", client.KeyPEM)
	strangerCrt, strangerKey := write("stranger.crt", stranger.CertPEM), write("stranger.key", stranger.KeyPEM)

	setPort, fwdPort, offPort := freePort(t), freePort(t), freePort(t)
	dir := t.TempDir()
	writeFile(t, dir, "all.yaml", testbin.GatewayYAML("gw")+fmt.Sprintf(`  tls:
    frontend:
      default:
        validation:
          caCertificateRefs: [{group: "", kind: ConfigMap, name: client-ca}]
  listeners:
  - {name: set, protocol: HTTPS, port: %d, tls: {certificateRefs: [{name: server}]}}
  - {name: fwd, protocol: HTTPS, port: %d, tls: {certificateRefs: [{name: server}]}}
  - {name: "off", protocol: HTTPS, port: %d, tls: {certificateRefs: [{name: server}]}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: client-ca}
data:
  ca.crt: |
    %s
---
apiVersion: causeway.dev/v1alpha1
kind: ClientTrafficPolicy
metadata: {name: set}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw, sectionName: set}]
  xfcc: SanitizeSet
---
apiVersion: causeway.dev/v1alpha1
kind: ClientTrafficPolicy
metadata: {name: fwd}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw, sectionName: fwd}]
  xfcc: Forward
---
apiVersion: causeway.dev/v1alpha1
kind: ClientTrafficPolicy
metadata: {name: "off"}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw, sectionName: "off"}]
  xfcc: Sanitize
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{group: causeway.dev, kind: Backend, name: app}]}]
---
`, setPort, fwdPort, offPort, indent(clientCA.CertPEM))+backendYAML("app", be)+"---\n"+secretYAML("server", server.CertPEM, server.KeyPEM))
	g := startGateway(t, dir, "--access-log", "off")
	g.wantNoProblems()

	// curlGet runs curl against a listener and returns the HTTP status
	// ("000" when there was none), the body and curl's error output.
	curlGet := func(t *testing.T, port int, path string, args ...string) (code, body, stderr string, err error) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "body")
		all := append([]string{"-sS", "--max-time", "10", "-o", out, "-w", "%{http_code}",
			"--cacert", serverCAFile, "--resolve", fmt.Sprintf("mtls.example.com:%d:127.0.0.1", port),
			"-H", `X-Forwarded-Client-Cert: Hash=forged;Subject="CN=admin"`}, args...)
		all = append(all, fmt.Sprintf("https://mtls.example.com:%d%s", port, path))
		cmd := exec.Command(curl, all...)
		var se strings.Builder
		cmd.Stderr = &se
		o, err := cmd.Output()
		b, _ := os.ReadFile(out)
		return string(o), string(b), se.String(), err
	}
	sum := sha256.Sum256(client.Leaf.Raw)
	base := "Hash=" + hex.EncodeToString(sum[:])
	tail := `;Subject="CN=client";URI=spiffe://example.org/ns/default/sa/client;DNS=client.example`

	t.Run("SanitizeSet: hash, subject and SANs", func(t *testing.T) {
		code, body, se, err := curlGet(t, setPort, "/set", "--cert", clientCrt, "--key", clientKey)
		if err != nil || code != "200" {
			t.Fatalf("curl with a client certificate: status %s, %v: %s", code, err, se)
		}
		e := decodeEcho(t, body)
		if got := e.Headers["X-Forwarded-Client-Cert"]; len(got) != 1 || got[0] != base+tail {
			t.Fatalf("backend saw X-Forwarded-Client-Cert %q\nwant %q", got, base+tail)
		}
	})
	t.Run("Forward: the certificate and chain too", func(t *testing.T) {
		code, body, se, err := curlGet(t, fwdPort, "/fwd", "--cert", clientCrt, "--key", clientKey)
		if err != nil || code != "200" {
			t.Fatalf("curl with a client certificate: status %s, %v: %s", code, err, se)
		}
		got := decodeEcho(t, body).Headers["X-Forwarded-Client-Cert"]
		if len(got) != 1 || !strings.HasPrefix(got[0], base+`;Cert="`) || !strings.HasSuffix(got[0], tail) {
			t.Fatalf("backend saw X-Forwarded-Client-Cert %q", got)
		}
		v := got[0]
		certField := v[strings.Index(v, `Cert="`)+len(`Cert="`):]
		certField = certField[:strings.IndexByte(certField, '"')]
		p, err := url.QueryUnescape(certField)
		if err != nil {
			t.Fatalf("Cert is not URL-encoded: %v", err)
		}
		if blk, _ := pem.Decode([]byte(p)); blk == nil || string(blk.Bytes) != string(client.Leaf.Raw) {
			t.Fatalf("Cert does not decode to the client's certificate: %q", p)
		}
		if !strings.Contains(v, `;Chain="`) {
			t.Fatalf("no Chain in %q", v)
		}
	})
	t.Run("Sanitize: the client's header is dropped, none set", func(t *testing.T) {
		code, body, se, err := curlGet(t, offPort, "/off", "--cert", clientCrt, "--key", clientKey)
		if err != nil || code != "200" {
			t.Fatalf("curl with a client certificate: status %s, %v: %s", code, err, se)
		}
		if got, ok := decodeEcho(t, body).Headers["X-Forwarded-Client-Cert"]; ok {
			t.Fatalf("backend saw X-Forwarded-Client-Cert %q on a Sanitize listener", got)
		}
	})

	if n := hits.Load(); n != 3 {
		t.Fatalf("backend answered %d requests, want 3", n)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no certificate", nil},
		{"certificate of another CA", []string{"--cert", strangerCrt, "--key", strangerKey}},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			for _, port := range []int{setPort, offPort} {
				// TLS 1.3: the client finishes its side of the handshake
				// before the server has judged the certificate, so curl
				// sees the refusal on its first read or write: no HTTP
				// status either way.
				code, body, se, err := curlGet(t, port, "/refused", tc.args...)
				if err == nil || code != "000" {
					t.Fatalf("port %d: curl got status %s (%v): %q %s", port, code, err, body, se)
				}
				// TLS 1.2: the server judges the certificate before its
				// Finished, so the handshake itself fails with its alert
				// (curl exit 35, SSL connect error).
				code, _, se, err = curlGet(t, port, "/refused", append([]string{"--tls-max", "1.2"}, tc.args...)...)
				ee, _ := err.(*exec.ExitError)
				if ee == nil || ee.ExitCode() != 35 || code != "000" || !strings.Contains(strings.ToLower(se), "alert") {
					t.Fatalf("port %d, TLS 1.2: want a handshake failure with an alert (exit 35), got status %s, %v: %s", port, code, err, se)
				}
			}
		})
	}
	if n := hits.Load(); n != 3 {
		t.Fatalf("backend answered %d requests, want 3: a refused client reached it", n)
	}
}
