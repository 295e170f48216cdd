package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"causeway.dev/causeway/test/testbin"
	"causeway.dev/causeway/test/testcert"
)

// TestL4 drives TLS passthrough (the client sees the backend's own
// certificate), TLS termination in front of a TCP backend, and a TCPRoute
// carrying a real protocol (Redis, through redis-cli).
func TestL4(t *testing.T) {
	redis, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed; test/run.sh installs it (apt-get install redis-server redis-tools)")
	}
	redisPort := freePort(t)
	srv := exec.Command(redis, "--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })

	// A TLS backend with its own certificate, echoing what it reads.
	tlsAddr, beCert := serveTLS(t, "db.example.com", acceptEcho)
	plainAddr := serveTCP(t, acceptEcho)

	gw := testcert.SelfSigned(t, "term.example.com")
	passPort, termPort, tcpPort := freePort(t), freePort(t), freePort(t)
	dir := t.TempDir()
	writeFile(t, dir, "all.yaml", testbin.GatewayClassYAML+"---\n"+fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  gatewayClassName: causeway
  addresses: [{value: 127.0.0.1}]
  listeners:
  - {name: pass, port: %d, protocol: TLS, tls: {mode: Passthrough}}
  - {name: term, port: %d, protocol: TLS, hostname: term.example.com, tls: {mode: Terminate, certificateRefs: [{name: gw-cert}]}}
  - {name: redis, port: %d, protocol: TCP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: db}
spec:
  parentRefs: [{name: edge, sectionName: pass}]
  hostnames: [db.example.com]
  rules: [{backendRefs: [{group: causeway.dev, kind: Backend, name: tls-echo}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: term}
spec:
  parentRefs: [{name: edge, sectionName: term}]
  rules: [{backendRefs: [{group: causeway.dev, kind: Backend, name: plain-echo}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: redis}
spec:
  parentRefs: [{name: edge, sectionName: redis}]
  rules: [{backendRefs: [{group: causeway.dev, kind: Backend, name: redis}]}]
---
`, passPort, termPort, tcpPort)+backendYAML("tls-echo", tlsAddr)+"---\n"+
		backendYAML("plain-echo", plainAddr)+"---\n"+
		backendYAML("redis", fmt.Sprintf("127.0.0.1:%d", redisPort))+"---\n"+secretYAML("gw-cert", gw.CertPEM, gw.KeyPEM))
	g := startGateway(t, dir, "--access-log", "off")
	if p := g.get("/status?problems=1"); strings.TrimSpace(p) != "" {
		t.Logf("status problems:\n%s", p)
	}

	t.Run("passthrough shows the backend's certificate", func(t *testing.T) {
		c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", passPort), &tls.Config{ServerName: "db.example.com", RootCAs: certPool(beCert)})
		if err != nil {
			t.Fatalf("handshake through the gateway: %v", err)
		}
		defer c.Close()
		if got := c.ConnectionState().PeerCertificates[0].Subject.CommonName; got != "db.example.com" {
			t.Fatalf("peer certificate %q", got)
		}
		roundTrip(t, c, "hello passthrough")
	})
	t.Run("passthrough refuses an unknown SNI", func(t *testing.T) {
		c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", passPort), &tls.Config{ServerName: "other.example.com", InsecureSkipVerify: true})
		if err == nil {
			c.Close()
			t.Fatal("handshake with an unrouted SNI succeeded")
		}
	})
	t.Run("terminate then plaintext", func(t *testing.T) {
		c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", termPort), &tls.Config{ServerName: "term.example.com", RootCAs: certPool(gw.CertPEM)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		roundTrip(t, c, "hello terminate")
	})
	t.Run("redis through TCPRoute", func(t *testing.T) {
		cli := func(args ...string) string {
			out, err := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(tcpPort)}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("redis-cli %s: %v %.200s", args[0], err, out)
			}
			return strings.TrimSpace(string(out))
		}
		deadline := time.Now().Add(5 * time.Second)
		for cli("PING") != "PONG" && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond) // redis-server may still be starting
		}
		big := strings.Repeat("x", 100_000) // one argv string is limited to 128 KiB
		if got := cli("SET", "k", big); got != "OK" {
			t.Fatalf("SET: %q", got)
		}
		if got := cli("GET", "k"); got != big {
			t.Fatalf("GET returned %d bytes", len(got))
		}
	})
}

// serveTCP serves a loopback listener with serve until the test ends and
// returns its address.
func serveTCP(t testing.TB, serve func(net.Listener)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serve(ln)
	return ln.Addr().String()
}

// serveTLS is serveTCP behind TLS, with a self-signed certificate for
// host, which it returns (PEM).
func serveTLS(t testing.TB, host string, serve func(net.Listener)) (addr string, certPEM []byte) {
	t.Helper()
	c := testcert.SelfSigned(t, host)
	return serveTCP(t, func(ln net.Listener) {
		serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{c.TLS}}))
	}), c.CertPEM
}

// acceptEcho echoes what each connection of ln reads.
func acceptEcho(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() { defer c.Close(); io.Copy(c, c) }()
	}
}

func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf, []byte(msg)) {
		t.Fatalf("echo %q, %v", buf, err)
	}
}
