package upstream

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
)

// BenchmarkRoundTrip compares this package's HTTP/1.1 client with
// net/http's Transport on the same keep-alive loopback server and a small
// response. The figures include the server's work, which is the same for
// both. cpu-ms/1k-req is the process's CPU time (client and server) per
// thousand requests, the unit of the gateway's performance target.
func BenchmarkRoundTrip(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello, world")
	}))
	defer srv.Close()
	m := NewManager(Options{})
	defer m.Close()
	m.Update(benchClusters(srv.Listener.Addr().String()))
	tr := &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	defer tr.CloseIdleConnections()

	run := func(b *testing.B, rt func(*http.Request) (*http.Response, error)) {
		ctx, cancel := context.WithCancel(context.Background()) // as a server request's context
		defer cancel()
		req := newReq(ctx, "GET", "/bench?x=1", nil)
		req.URL.Host = srv.Listener.Addr().String()
		req.Header.Set("User-Agent", "bench")
		req.Header.Set("Accept", "*/*")
		req.Header.Set("X-Forwarded-For", "10.0.0.1")
		buf := make([]byte, 512)
		b.ReportAllocs()
		start := cpuTime()
		for b.Loop() {
			resp, err := rt(req)
			if err != nil {
				b.Fatal(err)
			}
			for {
				_, err := resp.Body.Read(buf)
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			resp.Body.Close()
		}
		reportCPU(b, start)
	}
	b.Run("upstream", func(b *testing.B) { run(b, m.Cluster("c").RoundTrip) })
	b.Run("nethttp", func(b *testing.B) { run(b, tr.RoundTrip) })

	parallel := func(b *testing.B, rt func(*http.Request) (*http.Response, error)) {
		b.ReportAllocs()
		start := cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := newReq(ctx, "GET", "/bench", nil)
			req.URL.Host = srv.Listener.Addr().String()
			buf := make([]byte, 512)
			for pb.Next() {
				resp, err := rt(req)
				if err != nil {
					b.Error(err)
					return
				}
				for {
					if _, err := resp.Body.Read(buf); err != nil {
						break
					}
				}
				resp.Body.Close()
			}
		})
		reportCPU(b, start)
	}
	b.Run("upstream-parallel", func(b *testing.B) { parallel(b, m.Cluster("c").RoundTrip) })
	b.Run("nethttp-parallel", func(b *testing.B) { parallel(b, tr.RoundTrip) })
}

func benchClusters(addr string) []*ir.Cluster { return []*ir.Cluster{h1Cluster("c", addr)} }

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N)*1000, "cpu-ms/1k-req")
}
