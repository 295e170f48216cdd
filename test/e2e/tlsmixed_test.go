package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"causeway.dev/causeway/test/testbin"
	"causeway.dev/causeway/test/testcert"
)

// TestTLSMixed: TLS listeners in modes Terminate and Passthrough on one
// port (Gateway API TLSRouteModeMixed), in one Gateway as the conformance
// test has them and across two Gateways sharing the address and port. The
// terminating SNIs get the gateway's certificates and reach a plaintext
// TCP backend; the passthrough SNI completes its handshake with a real TLS
// backend; any other SNI is refused. A TCPRoute behind a terminating TLS
// listener gets the plaintext of any SNI.
func TestTLSMixed(t *testing.T) {
	tlsAddr, beCert := serveTLS(t, "abc.example.com", acceptEcho)
	// The plaintext backend answers each line it reads prefixed, so a
	// reply proves it received plaintext, not TLS records.
	plainAddr := serveTCP(t, acceptLines)

	termCert, otherCert := testcert.SelfSigned(t, "tls.example.com"), testcert.SelfSigned(t, "*.other.test")
	port, tcpPort := freePort(t), freePort(t)
	dir := t.TempDir()
	writeFile(t, dir, "all.yaml", testbin.GatewayClassYAML+"---\n"+fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: mixed, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  gatewayClassName: causeway
  addresses: [{value: 127.0.0.1}]
  listeners:
  - {name: tls-terminate, port: %[1]d, protocol: TLS, hostname: tls.example.com, tls: {mode: Terminate, certificateRefs: [{name: term-cert}]}}
  - {name: tls-passthrough, port: %[1]d, protocol: TLS, hostname: abc.example.com, tls: {mode: Passthrough}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: other, creationTimestamp: "2026-01-01T00:00:01Z"}
spec:
  gatewayClassName: causeway
  addresses: [{value: 127.0.0.1}]
  listeners:
  - {name: term, port: %[1]d, protocol: TLS, hostname: "*.other.test", tls: {mode: Terminate, certificateRefs: [{name: other-cert}]}}
  - {name: tcp-term, port: %[2]d, protocol: TLS, tls: {mode: Terminate, certificateRefs: [{name: other-cert}]}}
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: tcp-behind-tls}
spec:
  parentRefs: [{name: other, sectionName: tcp-term}]
  rules: [{backendRefs: [{group: causeway.dev, kind: Backend, name: plain}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: passthrough}
spec:
  parentRefs: [{name: mixed}]
  hostnames: [abc.example.com]
  rules: [{backendRefs: [{group: causeway.dev, kind: Backend, name: tls-echo}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: terminate}
spec:
  parentRefs: [{name: mixed}]
  hostnames: [tls.example.com]
  rules: [{backendRefs: [{group: causeway.dev, kind: Backend, name: plain}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: other}
spec:
  parentRefs: [{name: other}]
  rules: [{backendRefs: [{group: causeway.dev, kind: Backend, name: plain}]}]
---
`, port, tcpPort)+backendYAML("tls-echo", tlsAddr)+"---\n"+
		backendYAML("plain", plainAddr)+"---\n"+
		secretYAML("term-cert", termCert.CertPEM, termCert.KeyPEM)+"---\n"+secretYAML("other-cert", otherCert.CertPEM, otherCert.KeyPEM))
	g := startGateway(t, dir, "--access-log", "off")
	if p := strings.TrimSpace(g.get("/status?problems=1")); p != "" && p != "[]" && p != "{}" {
		t.Fatalf("status problems:\n%s", p)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	for _, tc := range []struct{ sni, cn string }{
		{"tls.example.com", "tls.example.com"},
		{"x.other.test", "*.other.test"}, // the other Gateway, same socket
	} {
		t.Run("terminate "+tc.sni, func(t *testing.T) {
			// Only the gateway's certificates are trusted, not the backend's.
			c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: tc.sni, RootCAs: certPool(termCert.CertPEM, otherCert.CertPEM)})
			if err != nil {
				t.Fatalf("handshake with the gateway: %v", err)
			}
			defer c.Close()
			if got := c.ConnectionState().PeerCertificates[0].Subject.CommonName; got != tc.cn {
				t.Fatalf("certificate %q, want %q", got, tc.cn)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, "hello "+tc.sni+"\n"); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			if want := "plain:hello " + tc.sni + "\n"; err != nil || line != want {
				t.Fatalf("got %q, %v; want %q", line, err, want)
			}
		})
	}
	t.Run("TCPRoute behind a terminating TLS listener", func(t *testing.T) {
		c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tcpPort), &tls.Config{ServerName: "db.other.test", RootCAs: certPool(otherCert.CertPEM)})
		if err != nil {
			t.Fatalf("handshake with the gateway: %v", err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "select 1\n"); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "plain:select 1\n" {
			t.Fatalf("got %q, %v; want the plaintext backend's answer", line, err)
		}
	})
	t.Run("passthrough abc.example.com", func(t *testing.T) {
		// Only the backend's certificate is trusted.
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "abc.example.com", RootCAs: certPool(beCert)})
		if err != nil {
			t.Fatalf("handshake with the backend through the gateway: %v", err)
		}
		defer c.Close()
		if got := c.ConnectionState().PeerCertificates[0].Subject.CommonName; got != "abc.example.com" {
			t.Fatalf("peer certificate %q", got)
		}
		roundTrip(t, c, "hello passthrough")
	})
	t.Run("unknown SNI refused", func(t *testing.T) {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "nope.example.com", InsecureSkipVerify: true})
		if err == nil {
			c.Close()
			t.Fatal("handshake with an unrouted SNI succeeded")
		}
	})
}

// acceptLines answers each line read with "plain:" and the line.
func acceptLines(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if _, err := io.WriteString(c, "plain:"+line); err != nil {
					return
				}
			}
		}()
	}
}
