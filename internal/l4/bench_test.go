package l4

import (
	"io"
	"net"
	"testing"

	"causeway.dev/causeway/internal/ir"
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
