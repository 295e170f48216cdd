package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/upstream"
)

// BenchmarkRetryPath measures one request through the proxy, with a
// retry policy, that succeeds at the first attempt ("first-try") and one
// whose first attempt is answered 503 and retried once ("retried-once"),
// against a real loopback backend; one client, keep-alive. The
// difference is the cost of a retry: the failed exchange, its drained
// body, the budget and breaker slots and the replay. Allocations and
// cpu-ns/op are the whole process's: client, proxy and backend.
func BenchmarkRetryPath(b *testing.B) {
	for _, tc := range []struct {
		name     string
		failEven bool
	}{{"first-try", false}, {"retried-once", true}} {
		b.Run(tc.name, func(b *testing.B) {
			var n atomic.Int64
			be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.failEven && n.Add(1)%2 == 1 {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				w.Header()["Content-Length"] = []string{"64"}
				w.Write(body64)
			}))
			defer be.Close()
			up := upstream.NewManager(upstream.Options{})
			defer up.Close()
			p := New(Options{Upstreams: up, Logger: slog.New(slog.DiscardHandler)})
			defer p.Shutdown(b.Context())
			r := prefixRoute("r", "/", backend("be", 1))
			r.Retry = &ir.Retry{Attempts: 1, On: []string{ir.RetryOnGatewayError},
				BackoffBase: 1, BackoffMax: 1, // no wait: measure the retry, not the backoff
				BudgetPercent: 100, MinRetryConcurrency: 10}
			if err := p.Apply(config([]*ir.Route{r}, cluster("be", be.URL))); err != nil {
				b.Fatal(err)
			}
			url := "http://" + p.Addr("main").String() + "/"
			tr := &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			buf := make([]byte, 256)
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				resp, err := c.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				k, _ := io.ReadFull(resp.Body, buf[:64])
				resp.Body.Close()
				if resp.StatusCode != 200 || k != 64 {
					b.Fatalf("status %d, %d bytes", resp.StatusCode, k)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			if tc.failEven && n.Load() < 2*int64(b.N) {
				b.Fatalf("%d backend requests for %d proxied: not every request was retried", n.Load(), b.N)
			}
		})
	}
}
