package proxy

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
)

func faultRoute(f *ir.Fault) *ir.Route {
	r := prefixRoute("r", "/", backend("c", 1))
	r.Fault = f
	return r
}

func TestFaultAbortPercentage(t *testing.T) {
	var reached atomic.Int64
	srv := backendServer(t, func(w http.ResponseWriter, r *http.Request) { reached.Add(1) })
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{faultRoute(&ir.Fault{AbortStatus: 418, AbortPercent: 30})}, cluster("c", srv.URL)))
	c := client(t)
	const n = 1000
	aborted := 0
	for i := 0; i < n; i++ {
		code, body, _ := get(t, c, "GET", e.url("main")+"/", nil)
		switch code {
		case 418:
			aborted++
			if body != "fault filter abort\n" {
				t.Fatalf("abort body %q", body)
			}
		case 200:
		default:
			t.Fatalf("status %d", code)
		}
	}
	// Binomial(1000, 0.3): sd ≈ 14.5; ±6 sd.
	if aborted < 213 || aborted > 387 {
		t.Errorf("%d of %d aborted, want about 30%%", aborted, n)
	}
	if int(reached.Load()) != n-aborted {
		t.Errorf("backend reached %d times, want %d", reached.Load(), n-aborted)
	}
}

func TestFaultDelayAndHeaderMatch(t *testing.T) {
	srv := textBackend(t, "ok")
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{faultRoute(&ir.Fault{Delay: ir.Duration(300 * time.Millisecond), DelayPercent: 100,
		AbortStatus: 503, AbortPercent: 100, Header: "X-Chaos", HeaderValue: "on"})}, cluster("c", srv.URL)))
	c := client(t)
	if code, body, _ := get(t, c, "GET", e.url("main")+"/", nil); code != 200 || body != "ok" {
		t.Fatalf("without the header: %d %q, want the backend's answer", code, body)
	}
	if code, _, _ := get(t, c, "GET", e.url("main")+"/", map[string]string{"X-Chaos": "off"}); code != 200 {
		t.Fatalf("with another value: %d, want 200", code)
	}
	start := time.Now()
	code, _, _ := get(t, c, "GET", e.url("main")+"/", map[string]string{"X-Chaos": "on"})
	if code != 503 {
		t.Fatalf("with the header: %d, want 503", code)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("answered after %v, want the 300ms delay first", d)
	}
}

func TestFaultGRPCAbort(t *testing.T) {
	srv := textBackend(t, "ok")
	e := newEnv(t, Options{})
	r := faultRoute(&ir.Fault{AbortGRPCStatus: 14, AbortPercent: 100})
	r.GRPC = true
	e.apply(config([]*ir.Route{r}, cluster("c", srv.URL)))
	req, _ := http.NewRequest("POST", e.url("main")+"/pkg.Svc/Call", http.NoBody)
	req.Header.Set("Content-Type", "application/grpc")
	resp, err := h2cClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Grpc-Status") != "14" || resp.Header.Get("Content-Type") != "application/grpc" {
		t.Errorf("got %d %v, want a trailers-only UNAVAILABLE", resp.StatusCode, resp.Header)
	}
}
