package l4

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/test/testcert"
)

// mixed is one TLS socket with a terminating route (tls.example.com, to a
// plaintext backend) and a passthrough route (abc.example.com, to a TLS
// backend with its own CA), as Gateway API TLSRouteModeMixed sets up.
type mixed struct {
	gatewayCA, backendCA *testcert.CA
	gatewayCert          []byte // DER of the gateway's leaf
	backendCert          []byte
	plain, secure        *testDialer
	srv                  *Server
	addr                 string
}

func newMixed(t *testing.T, opts Options) *mixed {
	t.Helper()
	m := &mixed{gatewayCA: testcert.NewCA(t, "gateway CA"), backendCA: testcert.NewCA(t, "backend CA")}
	gw := m.gatewayCA.Server(t, "tls.example.com", "tls.example.com")
	m.gatewayCert = gw.Leaf.Raw
	be := m.backendCA.Server(t, "abc.example.com", "abc.example.com")
	m.backendCert = be.Leaf.Raw
	// The plaintext backend answers the first line it reads; TLS bytes
	// reaching it would never form "hello\n".
	m.plain = &testDialer{addr: serveTCP(t, func(c net.Conn) {
		line, err := readLine(t, c)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "plain:%s\n", line)
	})}
	m.secure = &testDialer{addr: serveTLS(t, be.TLS, sayName("backend"))}
	term := l4route("tlsroute/default/term/rule/0", []string{"tls.example.com"}, "plain")
	term.Terminate = true
	l := &ir.Listener{Name: "tls", Protocol: ir.ProtocolTLS,
		TLS: &ir.TLS{Certificates: []*ir.Certificate{{SNI: []string{"tls.example.com"}, CertPEM: gw.CertPEM, KeyPEM: gw.KeyPEM}}},
		L4Routes: []*ir.L4Route{
			term,
			l4route("tlsroute/default/pass/rule/0", []string{"abc.example.com"}, "secure"),
		},
	}
	m.srv, m.addr = start(t, opts, l, map[string]Dialer{"plain": m.plain, "secure": m.secure})
	return m
}

// TestMixedModes: on one socket, the terminating SNI gets the gateway's
// certificate and its plaintext reaches the backend; the passthrough SNI
// completes its handshake with the backend itself.
func TestMixedModes(t *testing.T) {
	m := newMixed(t, Options{})
	for i := range 3 { // alternate, on the same Table
		c, err := tls.Dial("tcp", m.addr, &tls.Config{ServerName: "tls.example.com", RootCAs: m.gatewayCA.Pool})
		if err != nil {
			t.Fatalf("terminate handshake: %v", err)
		}
		if !bytes.Equal(c.ConnectionState().PeerCertificates[0].Raw, m.gatewayCert) {
			t.Fatal("terminated connection: not the gateway's certificate")
		}
		msg := fmt.Sprintf("hello %d", i)
		if _, err := io.WriteString(c, msg+"\n"); err != nil {
			t.Fatal(err)
		}
		if line, err := readLine(t, c); err != nil || line != "plain:"+msg {
			t.Fatalf("terminated connection: got %q, %v", line, err)
		}
		c.Close()

		p, err := tls.Dial("tcp", m.addr, &tls.Config{ServerName: "abc.example.com", RootCAs: m.backendCA.Pool})
		if err != nil {
			t.Fatalf("passthrough handshake: %v", err)
		}
		if !bytes.Equal(p.ConnectionState().PeerCertificates[0].Raw, m.backendCert) {
			t.Fatal("passed-through connection: not the backend's certificate")
		}
		if line, err := readLine(t, p); err != nil || line != "backend" {
			t.Fatalf("passed-through connection: got %q, %v", line, err)
		}
		if _, err := io.WriteString(p, "ping\n"); err != nil {
			t.Fatal(err)
		}
		if line, err := readLine(t, p); err != nil || line != "ping" {
			t.Fatalf("passed-through echo: %q, %v", line, err)
		}
		p.Close()
	}
	if got := m.plain.dials.Load(); got != 3 {
		t.Errorf("plaintext backend dialled %d times, want 3", got)
	}
	if got := m.secure.dials.Load(); got != 3 {
		t.Errorf("TLS backend dialled %d times, want 3", got)
	}
}

// TestMixedUnknownSNI: a name that matches neither route is refused before
// any handshake or dial, as is a ClientHello without SNI.
func TestMixedUnknownSNI(t *testing.T) {
	m := newMixed(t, Options{})
	for _, sni := range []string{"other.example.com", ""} {
		c, err := net.Dial("tcp", m.addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(clientHello(t, sni)); err != nil {
			t.Fatal(err)
		}
		if !refused(c) {
			t.Errorf("SNI %q: not refused (or answered)", sni)
		}
		c.Close()
		// A real client sees the failure as a handshake error.
		tc, err := tls.Dial("tcp", m.addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err == nil {
			tc.Close()
			t.Errorf("SNI %q: handshake completed", sni)
		}
	}
	if n := m.plain.dials.Load() + m.secure.dials.Load(); n != 0 {
		t.Errorf("%d backend dials for refused connections", n)
	}
}

// TestMixedHandshakeFailure: a client of the terminating route that breaks
// off its handshake, by sending garbage after its ClientHello or by
// stalling, is closed without a backend dial; the socket serves on.
func TestMixedHandshakeFailure(t *testing.T) {
	m := newMixed(t, Options{HandshakeTimeout: 300 * time.Millisecond})
	hello := clientHello(t, "tls.example.com")
	for _, tc := range []struct {
		name  string
		after []byte
	}{
		// Application data before the handshake is done: an alert.
		{"garbage", []byte("\x17\x03\x03\x00\x05hello")},
		// Nothing more: the handshake timeout closes it.
		{"stall", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", m.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// One write, so that the gateway may peek both together.
			if _, err := c.Write(append(append([]byte(nil), hello...), tc.after...)); err != nil {
				t.Fatal(err)
			}
			// The server's flight comes first; then the connection must end,
			// long before this deadline.
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(c)
			if isTimeout(err) {
				t.Fatal("connection still open after a failed handshake")
			}
			if len(got) == 0 || got[0] != recordHandshake {
				t.Fatalf("the gateway did not answer the ClientHello itself (%d bytes)", len(got))
			}
		})
	}
	waitFor(t, func() bool { return m.srv.Conns() == 0 })
	if n := m.plain.dials.Load(); n != 0 {
		t.Errorf("%d backend dials for failed handshakes", n)
	}
	// Still serving.
	c, err := tls.Dial("tcp", m.addr, &tls.Config{ServerName: "tls.example.com", RootCAs: m.gatewayCA.Pool})
	if err != nil {
		t.Fatalf("after the failures: %v", err)
	}
	c.Close()
}

// TestCompileTerminate: a terminating route needs the listener's
// certificates and a TLS listener.
func TestCompileTerminate(t *testing.T) {
	term := l4route("r", nil, "c")
	term.Terminate = true
	known := func(string) bool { return true }
	for _, tc := range []struct {
		name string
		l    *ir.Listener
		want string
	}{
		{"no certificates", &ir.Listener{Name: "tls", Protocol: ir.ProtocolTLS, L4Routes: []*ir.L4Route{term}}, "no certificates"},
		{"empty certificates", &ir.Listener{Name: "tls", Protocol: ir.ProtocolTLS, TLS: &ir.TLS{}, L4Routes: []*ir.L4Route{term}}, "no certificates"},
		{"TCP", &ir.Listener{Name: "tcp", Protocol: ir.ProtocolTCP, L4Routes: []*ir.L4Route{term}}, "TLS termination on a TCP listener"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.l, known)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Compile: %v, want an error with %q", err, tc.want)
			}
		})
	}
	// Passthrough only: no certificates needed, none compiled.
	tab, err := Compile(&ir.Listener{Name: "tls", Protocol: ir.ProtocolTLS, L4Routes: []*ir.L4Route{l4route("p", nil, "c")}}, known)
	if err != nil || tab.tls != nil {
		t.Fatalf("passthrough listener: %v, tls config %v", err, tab != nil && tab.tls != nil)
	}
}
