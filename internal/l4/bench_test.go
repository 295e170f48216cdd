package l4

import (
	"crypto/tls"
	"io"
	"net"
	"testing"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/test/testcert"
)

// BenchmarkTCPThroughput sends 1 MiB chunks to a sink that discards them,
// directly and through a TCP route, reporting bytes per second.
func BenchmarkTCPThroughput(b *testing.B) {
	sink := serveTCP(b, func(c net.Conn) {
		_, _ = io.Copy(io.Discard, c)
		_, _ = c.Write([]byte{1})
	})
	l := &ir.Listener{Name: "tcp", Protocol: ir.ProtocolTCP, L4Routes: []*ir.L4Route{l4route("r", nil, "sink")}}
	_, gw := start(b, Options{}, l, map[string]Dialer{"sink": &testDialer{addr: sink}})
	chunk := make([]byte, 1<<20)
	for _, tc := range []struct{ name, addr string }{{"direct", sink}, {"l4", gw}} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := net.Dial("tcp", tc.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.SetBytes(int64(len(chunk)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			// Wait until the sink has everything: it answers at EOF.
			_ = c.(*net.TCPConn).CloseWrite()
			if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkParseClientHello measures the SNI peek of passthrough.
func BenchmarkParseClientHello(b *testing.B) {
	hello := clientHello(b, "bench.example.com")
	b.SetBytes(int64(len(hello)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := parseClientHello(hello); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTLSPassthroughConn measures one passthrough connection through
// the gateway: accept, ClientHello peek, SNI match, dial, replay, one byte
// back. The client sends a recorded ClientHello, so no TLS work is counted.
func BenchmarkTLSPassthroughConn(b *testing.B) {
	hello := clientHello(b, "db.example.com")
	backend := serveTCP(b, func(c net.Conn) {
		if _, err := io.ReadFull(c, make([]byte, len(hello))); err == nil {
			_, _ = c.Write([]byte{1})
		}
	})
	l := &ir.Listener{Name: "tls", Protocol: ir.ProtocolTLS, L4Routes: []*ir.L4Route{
		l4route("r", []string{"db.example.com"}, "db"),
	}}
	_, gw := start(b, Options{}, l, map[string]Dialer{"db": &testDialer{addr: backend}})
	one := make([]byte, 1)
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", gw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(hello); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, one); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkTLSTerminateConn measures one terminated connection: a full
// TLS 1.3 handshake with the gateway (client side included), one line of
// plaintext to the backend and back.
func BenchmarkTLSTerminateConn(b *testing.B) {
	authority := testcert.NewCA(b, "CA")
	gwCert := authority.Server(b, "tls.example.com", "tls.example.com")
	backend := serveTCP(b, func(c net.Conn) { _, _ = io.Copy(c, c) })
	r := l4route("r", []string{"tls.example.com"}, "echo")
	r.Terminate = true
	l := &ir.Listener{Name: "tls", Protocol: ir.ProtocolTLS, L4Routes: []*ir.L4Route{r},
		TLS: &ir.TLS{Certificates: []*ir.Certificate{{CertPEM: gwCert.CertPEM, KeyPEM: gwCert.KeyPEM}}}}
	_, gw := start(b, Options{}, l, map[string]Dialer{"echo": &testDialer{addr: backend}})
	conf := &tls.Config{ServerName: "tls.example.com", RootCAs: authority.Pool}
	buf := make([]byte, 5)
	b.ReportAllocs()
	for b.Loop() {
		c, err := tls.Dial("tcp", gw, conf)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write([]byte("ping\n")); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
