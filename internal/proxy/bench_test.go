package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"syscall"
	"testing"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/upstream"
)

var body64 = []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n")

// benchBackend answers 64 bytes, like the anchors' backend.
func benchBackend(b *testing.B) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Length"] = []string{"64"}
		w.Write(body64)
	}))
	b.Cleanup(s.Close)
	return s
}

// runClients drives url with keep-alive HTTP/1.1 clients in parallel.
func runClients(b *testing.B, target string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 256)
		for pb.Next() {
			resp, err := c.Get(target)
			if err != nil {
				b.Error(err)
				return
			}
			n, _ := io.ReadFull(resp.Body, buf[:64])
			resp.Body.Close()
			if resp.StatusCode != 200 || n != 64 {
				b.Errorf("status %d, %d bytes", resp.StatusCode, n)
				return
			}
		}
	})
	// Wall time means little on a shared machine; CPU time of the whole
	// process (client, proxy and backend) per request is what compares.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user and system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkProxyHTTP1 measures the whole exchange in one process: client,
// proxy and backend; compare with BenchmarkDirectHTTP1 (no proxy) and
// BenchmarkReverseProxyHTTP1 (net/http/httputil in the proxy's place).
func BenchmarkProxyHTTP1(b *testing.B) {
	be := benchBackend(b)
	up := upstream.NewManager(upstream.Options{})
	defer up.Close()
	p := New(Options{Upstreams: up, Logger: slog.New(slog.DiscardHandler)})
	defer p.Shutdown(b.Context())
	if err := p.Apply(config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL))); err != nil {
		b.Fatal(err)
	}
	runClients(b, "http://"+p.Addr("main").String()+"/")
}

func BenchmarkDirectHTTP1(b *testing.B) {
	runClients(b, benchBackend(b).URL+"/")
}

func BenchmarkReverseProxyHTTP1(b *testing.B) {
	be := benchBackend(b)
	u, _ := url.Parse(be.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
	s := httptest.NewServer(rp)
	defer s.Close()
	runClients(b, s.URL+"/")
}
