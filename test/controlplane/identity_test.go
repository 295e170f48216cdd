package controlplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

	pb "causeway.dev/causeway/api/push/v1alpha1"
	"causeway.dev/causeway/internal/status"
	"causeway.dev/causeway/test/testcert"
)

// pki is a CA that issues certificates into files.
type pki struct {
	ca   *testcert.CA
	t    *testing.T
	dir  string
	file string // the CA certificate, PEM
}

func newPKI(t *testing.T, dir, name string) *pki {
	t.Helper()
	p := &pki{ca: testcert.NewCA(t, name), t: t, dir: dir, file: filepath.Join(dir, name+"-ca.pem")}
	if err := os.WriteFile(p.file, p.ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue makes a leaf certificate with the given SANs (URIs, else DNS
// names) and returns its PEM certificate and key and their files.
func (p *pki) issue(name string, usage x509.ExtKeyUsage, sans ...string) (certPEM, keyPEM []byte, certFile, keyFile string) {
	p.t.Helper()
	c := p.ca.Issue(p.t, testcert.Options{CommonName: name, SANs: sans, Usage: []x509.ExtKeyUsage{usage}})
	certFile, keyFile = filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem")
	if err := os.WriteFile(certFile, c.CertPEM, 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, c.KeyPEM, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return c.CertPEM, c.KeyPEM, certFile, keyFile
}

func tlsSecretYAML(name string, cert, key []byte) string {
	indent := func(b []byte) string {
		return "    " + strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "\n    ")
	}
	return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: %s, namespace: default}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n%s\n  tls.key: |\n%s\n",
		name, indent(cert), indent(key))
}

func httpsGatewayYAML(name, host, secret string, port int) string {
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: %s, namespace: default}
spec:
  gatewayClassName: causeway
  listeners:
  - name: https
    protocol: HTTPS
    port: %d
    hostname: %s
    tls: {certificateRefs: [{name: %s}]}
`, name, port, host, secret)
}

// programmed reads a Gateway's Programmed condition from the control
// plane's admin /status.
func programmed(t testing.TB, admin, ns, name string) status.Condition {
	t.Helper()
	code, body := get(admin, "/status")
	if code != http.StatusOK {
		return status.Condition{}
	}
	var rep status.Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("control /status: %v", err)
	}
	for _, e := range rep.Resources {
		if e.Ref.Kind == "Gateway" && e.Ref.Namespace == ns && e.Ref.Name == name {
			for _, c := range e.Conditions {
				if c.Type == status.Programmed {
					return c
				}
			}
		}
	}
	return status.Condition{}
}

// TestClientCertificates: proxies authenticated by client certificates
// (no tokens), each allowed the Gateways its SANs name; two Gateways
// sharing one HTTPS socket, each proxy receiving only its Gateway's key;
// and Gateway Programmed following the proxies.
func TestClientCertificates(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	if err := os.Mkdir(cfg, 0o755); err != nil {
		t.Fatal(err)
	}
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend %s %s", r.Host, r.URL.Path)
	}))
	t.Cleanup(be.Close)
	beHost, bePort, _ := net.SplitHostPort(be.Listener.Addr().String())

	trusted, other := newPKI(t, dir, "proxies"), newPKI(t, dir, "other")
	serving := newPKI(t, dir, "serving")
	certA, keyA, _, _ := serving.issue("a.example", x509.ExtKeyUsageServerAuth, "a.example")
	certB, keyB, _, _ := serving.issue("b.example", x509.ExtKeyUsageServerAuth, "b.example")

	port, portC := freePort(t, "127.0.0.6"), freePort(t, "127.0.0.7")
	writeFile(t, cfg, "class.yaml", classYAML)
	writeFile(t, cfg, "secrets.yaml", tlsSecretYAML("a-tls", certA, keyA)+"---\n"+tlsSecretYAML("b-tls", certB, keyB))
	// gw-a and gw-b share one HTTPS socket, by hostname.
	writeFile(t, cfg, "gw-a.yaml", httpsGatewayYAML("gw-a", "a.example", "a-tls", port))
	writeFile(t, cfg, "gw-b.yaml", httpsGatewayYAML("gw-b", "b.example", "b-tls", port))
	writeFile(t, cfg, "gw-c.yaml", gatewayYAML("gw-c", portC))
	writeFile(t, cfg, "backend.yaml", fmt.Sprintf(`apiVersion: causeway.dev/v1alpha1
kind: Backend
metadata: {name: be, namespace: default}
spec:
  endpoints: [{ip: {address: %s, port: %s}}]
`, beHost, bePort))
	writeFile(t, cfg, "route-a.yaml", routeYAML("route-a", "gw-a", "/a"))

	tlsDir := filepath.Join(dir, "tls")
	grpcAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
	cpAdmin := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
	cp := start(t, "control", "control", "--config", cfg, "--listen", grpcAddr, "--admin-addr", cpAdmin,
		"--client-ca", trusted.file, "--tls-dir", tlsDir, "--debounce", "50ms")
	waitReady(t, cp, cpAdmin)
	serverCA := filepath.Join(tlsDir, "ca.pem")

	if c := programmed(t, cpAdmin, "default", "gw-a"); c.Status || c.Reason != "NoProxies" {
		t.Fatalf("gw-a with no proxy: Programmed %+v, want False NoProxies", c)
	}

	proxy := func(id, gateways, ip, cert, key string) (*process, string) {
		admin := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
		return start(t, id, "proxy", "--control", grpcAddr, "--id", id, "--gateways", gateways,
			"--cert", cert, "--key", key, "--ca", serverCA, "--listen-address", ip, "--admin-addr", admin,
			"--access-log", "off", "--reconnect-max", "500ms", "--drain-timeout", "1s"), admin
	}

	t.Run("allowed by a URI SAN", func(t *testing.T) {
		_, _, cf, kf := trusted.issue("proxy-a", x509.ExtKeyUsageClientAuth, "spiffe://causeway.local/gateway/default/gw-a")
		pa, admin := proxy("pa", "default/gw-a", "127.0.0.6", cf, kf)
		waitReady(t, pa, admin)
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pemOf(t, serving.file))
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "a.example"}}}
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.6:%d/a", port), nil)
		req.Host = "a.example"
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("https://a.example/a on pa: %d", resp.StatusCode)
		}
		eventually(t, "gw-a Programmed", 10*time.Second, func() bool { return programmed(t, cpAdmin, "default", "gw-a").Status })
		if c := programmed(t, cpAdmin, "default", "gw-b"); c.Status || c.Reason != "NoProxies" {
			t.Errorf("gw-b, served by nobody: %+v", c)
		}
		if r := row(ctl(t, cpAdmin), "pa"); !strings.Contains(r, "certificate") || !strings.Contains(r, "SYNCED") {
			t.Errorf("proxy-status row of pa: %q", r)
		}
	})

	t.Run("refused a Gateway its certificate does not name", func(t *testing.T) {
		_, _, cf, kf := trusted.issue("proxy-a2", x509.ExtKeyUsageClientAuth, "spiffe://causeway.local/gateway/default/gw-a")
		p, admin := proxy("intruder", "default/gw-b", "127.0.0.8", cf, kf)
		want := "client certificate allows gateways default/gw-a, not gateway default/gw-b"
		eventually(t, "refusal logged by the proxy", 10*time.Second, func() bool {
			return strings.Contains(p.stderr.String(), "PermissionDenied") && strings.Contains(p.stderr.String(), want)
		})
		if code, _ := get(admin, "/ready"); code == http.StatusOK {
			t.Error("a proxy certified for gw-a is ready serving gw-b")
		}
		if _, listed := fleetStatus(t, cpAdmin)["intruder"]; listed {
			t.Error("refused proxy listed")
		}
		p.stop()
	})

	t.Run("refused a certificate of another CA", func(t *testing.T) {
		_, _, cf, kf := other.issue("proxy-x", x509.ExtKeyUsageClientAuth, "spiffe://causeway.local/gateway/default/gw-a")
		p, admin := proxy("stranger", "default/gw-a", "127.0.0.9", cf, kf)
		eventually(t, "handshake failure logged by the proxy", 10*time.Second, func() bool {
			return strings.Contains(p.stderr.String(), "tls: unknown certificate authority")
		})
		if code, _ := get(admin, "/ready"); code == http.StatusOK {
			t.Error("a proxy with an untrusted certificate is ready")
		}
		if _, listed := fleetStatus(t, cpAdmin)["stranger"]; listed {
			t.Error("untrusted proxy listed")
		}
		p.stop()
	})

	t.Run("a proxy of gw-a never receives gw-b's key", func(t *testing.T) {
		// This test process is the proxy: what arrives over the stream.
		certPEM, keyPEM, _, _ := trusted.issue("raw-a", x509.ExtKeyUsageClientAuth, "spiffe://causeway.local/gateway/default/gw-a")
		wire := firstResponseBytes(t, grpcAddr, serverCA, certPEM, keyPEM, "default/gw-a")
		if !bytes.Contains(wire, stripPEM(keyA)) {
			t.Fatal("the stream of gw-a lacks gw-a's key")
		}
		if bytes.Contains(wire, stripPEM(keyB)) || bytes.Contains(wire, stripPEM(certB)) {
			t.Fatal("the stream of gw-a carried gw-b's certificate or key")
		}
		// A proxy serving both receives both.
		certAB, keyAB, _, _ := trusted.issue("raw-ab", x509.ExtKeyUsageClientAuth,
			"spiffe://causeway.local/gateway/default/gw-a", "gw-b.default.gateway.causeway.local")
		both := firstResponseBytes(t, grpcAddr, serverCA, certAB, keyAB, "default/gw-a,default/gw-b")
		if !bytes.Contains(both, stripPEM(keyB)) || !bytes.Contains(both, stripPEM(keyA)) {
			t.Fatal("the stream of gw-a and gw-b lacks a key")
		}
	})

	t.Run("Programmed False when every proxy refuses", func(t *testing.T) {
		// pc's address has gw-c's port taken: it NACKs, and it is gw-c's
		// only proxy. Authorised by a DNS SAN.
		occupied, err := net.Listen("tcp", fmt.Sprintf("127.0.0.7:%d", portC))
		if err != nil {
			t.Fatal(err)
		}
		defer occupied.Close()
		_, _, cf, kf := trusted.issue("proxy-c", x509.ExtKeyUsageClientAuth, "gw-c.default.gateway.causeway.local")
		proxy("pc", "default/gw-c", "127.0.0.7", cf, kf)
		var c status.Condition
		eventually(t, "gw-c Programmed=False Invalid", 10*time.Second, func() bool {
			c = programmed(t, cpAdmin, "default", "gw-c")
			return !c.Status && c.Reason == "Invalid"
		})
		if !strings.Contains(c.Message, "refused") || !strings.Contains(c.Message, fmt.Sprint(portC)) {
			t.Errorf("gw-c's Programmed message lacks the refusal: %q", c.Message)
		}
		if !programmed(t, cpAdmin, "default", "gw-a").Status {
			t.Error("gw-a no longer Programmed")
		}
	})
}

func pemOf(t *testing.T, file string) []byte {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stripPEM is the base64 body of a PEM block's first line of data: bytes
// that occur in any copy of it.
func stripPEM(p []byte) []byte {
	lines := strings.Split(string(p), "\n")
	return []byte(lines[1])
}

// firstResponseBytes connects to the control plane as a proxy with a
// client certificate and returns the first Response's bytes.
func firstResponseBytes(t *testing.T, addr, serverCA string, certPEM, keyPEM []byte, gateways string) []byte {
	t.Helper()
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemOf(t, serverCA))
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		RootCAs: roots, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := pb.NewPushClient(cc).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pb.Request{Node: &pb.Node{Id: "raw-" + gateways, Role: "gateway", Gateways: strings.Split(gateways, ",")}}); err != nil {
		t.Fatal(err)
	}
	r, err := st.Recv()
	if err != nil {
		t.Fatalf("stream of %s: %v", gateways, err)
	}
	b, err := proto.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
