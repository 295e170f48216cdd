package upstream

import (
	"context"
	"io"
	"strings"
	"testing"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/test/testcert"
)

// BenchmarkRoundTripTLS: pooled HTTP/1.1 requests to a TLS backend
// (BackendTLSPolicy), and with a handshake per request (no pooling: the
// backend closes each connection), the cost of a full verification.
func BenchmarkRoundTripTLS(b *testing.B) {
	ca := testcert.NewCA(b, "bench CA")
	cert := ca.Server(b, "backend", "backend.test").TLS
	for _, tc := range []struct {
		name  string
		close bool
		sans  []string
	}{{"pooled", false, nil}, {"handshake", true, nil}, {"handshake-san", true, []string{"backend.test"}}} {
		b.Run(tc.name, func(b *testing.B) {
			srv := newTLSBackend(b, cert, false, nil, whoami)
			srv.Config.SetKeepAlivesEnabled(!tc.close)
			m := NewManager(Options{})
			defer m.Close()
			m.Update([]*ir.Cluster{tlsCluster("c", strings.TrimPrefix(srv.URL, "https://"), ir.UpstreamHTTP1,
				&ir.UpstreamTLS{SNI: "backend.test", CACertPEM: ca.CertPEM, SubjectAltNames: tc.sans})})
			c := m.Cluster("c")
			req := newReq(context.Background(), "GET", "/", nil)
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				resp, err := c.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			reportCPU(b, start)
		})
	}
}
