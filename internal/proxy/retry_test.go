package proxy

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
)

// retryRoute is a route to cluster "c" with the given retry policy.
func retryRoute(rt *ir.Retry) *ir.Route {
	r := prefixRoute("r", "/", backend("c", 1))
	r.Retry = rt
	return r
}

// failFirst answers 503 to the first n requests, then 200 with the sha256
// of the request body; every body seen is recorded.
type failFirst struct {
	n      int64
	calls  atomic.Int64
	mu     sync.Mutex
	bodies []string
}

func (f *failFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.bodies = append(f.bodies, fmt.Sprintf("%x", sha256.Sum256(b)))
	f.mu.Unlock()
	if f.calls.Add(1) <= f.n {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "busy")
		return
	}
	_, _ = fmt.Fprintf(w, "%x", sha256.Sum256(b))
}

func TestRetryFailingBackend(t *testing.T) {
	small := bytes.Repeat([]byte("abcdefgh"), 2048) // 16 KiB
	big := bytes.Repeat([]byte("x"), 1<<20)
	for _, tc := range []struct {
		name       string
		fails      int64
		body       []byte
		chunked    bool
		wantStatus int
		wantCalls  int64
	}{
		{"get recovers", 2, nil, false, 200, 3},
		{"post small body replayed", 2, small, false, 200, 3},
		{"chunked small body replayed", 1, small, true, 200, 2},
		{"post 1MiB not retried", 2, big, false, 503, 1},
		{"exhausted", 10, nil, false, 503, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ff := &failFirst{n: tc.fails}
			srv := backendServer(t, ff.ServeHTTP)
			e := newEnv(t, Options{})
			e.apply(config([]*ir.Route{retryRoute(&ir.Retry{Attempts: 3, On: []string{ir.RetryOnGatewayError},
				BackoffBase: ir.Duration(time.Millisecond), BudgetPercent: 100, MinRetryConcurrency: 10})}, cluster("c", srv.URL)))
			var body io.Reader
			if tc.body != nil {
				body = bytes.NewReader(tc.body)
				if tc.chunked {
					body = io.MultiReader(body) // hides the length: chunked
				}
			}
			req, _ := http.NewRequest("POST", e.url("main")+"/", body)
			resp, err := client(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, got, tc.wantStatus)
			}
			if n := ff.calls.Load(); n != tc.wantCalls {
				t.Errorf("backend saw %d attempts, want %d", n, tc.wantCalls)
			}
			want := fmt.Sprintf("%x", sha256.Sum256(tc.body))
			ff.mu.Lock()
			defer ff.mu.Unlock()
			for i, b := range ff.bodies {
				if b != want {
					t.Errorf("attempt %d: body hash %s, want %s", i, b, want)
				}
			}
			if tc.wantStatus == 200 && string(got) != want {
				t.Errorf("answer %q, want %q", got, want)
			}
		})
	}
}

func TestRetryConnectFailureAndReset(t *testing.T) {
	ok := textBackend(t, "fine")
	// A backend that closes every connection without answering: a reset.
	reset := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	})
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{retryRoute(&ir.Retry{Attempts: 4, On: []string{ir.RetryOnReset, ir.RetryOnConnectFailure},
		BackoffBase: ir.Duration(time.Millisecond), BudgetPercent: 100, MinRetryConcurrency: 10})},
		cluster("c", ok.URL, reset.URL)))
	c := client(t)
	for i := 0; i < 20; i++ {
		if code, body, _ := get(t, c, "GET", e.url("main")+"/", nil); code != 200 || body != "fine" {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	var first atomic.Int64
	var gap atomic.Int64
	srv := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		now := time.Now().UnixNano()
		if first.CompareAndSwap(0, now) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
			return
		}
		gap.Store(now - first.Load())
	})
	e := newEnv(t, Options{})
	// Backoff is 1ms; Retry-After says 1s, capped by BackoffMax at 300ms.
	e.apply(config([]*ir.Route{retryRoute(&ir.Retry{Attempts: 1, On: []string{ir.RetryOn5xx},
		BackoffBase: ir.Duration(time.Millisecond), BackoffMax: ir.Duration(300 * time.Millisecond), MinRetryConcurrency: 1})},
		cluster("c", srv.URL)))
	if code, _, _ := get(t, client(t), "GET", e.url("main")+"/", nil); code != 200 {
		t.Fatalf("status %d", code)
	}
	if g := time.Duration(gap.Load()); g < 300*time.Millisecond || g > 5*time.Second {
		t.Errorf("retry came %v after the 503, want about 300ms (Retry-After capped)", g)
	}
	if d, ok := retryAfter(http.Header{"Retry-After": {time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat)}}, time.Now()); !ok || d < time.Minute {
		t.Errorf("HTTP-date Retry-After = %v, %v", d, ok)
	}
}

func TestRetryPerTryTimeout(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select { // the first attempt hangs until the proxy gives up on it
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		_, _ = io.WriteString(w, "second")
	})
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{retryRoute(&ir.Retry{Attempts: 2, PerTryTimeout: ir.Duration(200 * time.Millisecond),
		On: []string{ir.RetryOnGatewayError}, BackoffBase: ir.Duration(time.Millisecond), MinRetryConcurrency: 1})},
		cluster("c", srv.URL)))
	code, body, _ := get(t, client(t), "GET", e.url("main")+"/", nil)
	if code != 200 || body != "second" {
		t.Fatalf("got %d %q, want the second attempt's answer", code, body)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d attempts, want 2", n)
	}
}

// TestRetryBudget: in an outage, concurrent requests make at most
// max(minRetryConcurrency, percent × in flight) retries at once.
func TestRetryBudget(t *testing.T) {
	var inflight, peak, calls atomic.Int64
	gate := make(chan struct{})
	srv := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-gate
		inflight.Add(-1)
		w.WriteHeader(503)
	})
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{retryRoute(&ir.Retry{Attempts: 5, On: []string{ir.RetryOnGatewayError},
		BackoffBase: ir.Duration(time.Millisecond), BudgetPercent: 0, MinRetryConcurrency: 2})},
		cluster("c", srv.URL)))
	const clients = 10
	c := client(t)
	var wg sync.WaitGroup
	codes := make([]int, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := c.Get(e.url("main") + "/")
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}(i)
	}
	// Let the first attempts arrive, then release answers one at a time
	// until everyone is done.
	waitUntil(t, func() bool { return inflight.Load() == clients })
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case gate <- struct{}{}:
			continue
		case <-done:
		}
		break
	}
	for i, code := range codes {
		if code != 503 {
			t.Errorf("client %d: %d, want 503", i, code)
		}
	}
	if p := peak.Load(); p > clients {
		t.Errorf("peak concurrency %d exceeds %d clients: retries were not budgeted", p, clients)
	}
	// Without a budget there would be 10 × 6 attempts; with 2 retries in
	// flight at most, each released answer frees one slot at a time.
	if n := calls.Load(); n >= clients*6 {
		t.Errorf("%d attempts: the budget did not cap retries", n)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRetryableConditions(t *testing.T) {
	grpc := func(code string) *http.Response {
		return &http.Response{StatusCode: 200, Header: http.Header{"Grpc-Status": {code}}}
	}
	status := func(c int) *http.Response { return &http.Response{StatusCode: c, Header: http.Header{}} }
	rp := func(on ...string) *retryPolicy {
		p, err := compileRetry(&Proxy{}, &ir.Route{Retry: &ir.Retry{Attempts: 1, On: on, StatusCodes: []int{429}}}, &routeEntry{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		on   string
		resp *http.Response
		want bool
	}{
		{ir.RetryOn5xx, status(500), true},
		{ir.RetryOn5xx, status(404), false},
		{ir.RetryOnGatewayError, status(500), false},
		{ir.RetryOnGatewayError, status(504), true},
		{ir.RetryOnStatusCodes, status(429), true},
		{ir.RetryOnStatusCodes, status(503), false},
		{ir.RetryOnUnavailable, grpc("14"), true},
		{ir.RetryOnUnavailable, grpc("4"), false},
		{ir.RetryOnDeadlineExceeded, grpc("4"), true},
		{ir.RetryOnCancelled, grpc("1"), true},
		{ir.RetryOnResourceExhausted, grpc("8"), true},
	} {
		if got := rp(tc.on).retryable(tc.resp, nil, false); got != tc.want {
			t.Errorf("%s on %d %v: %v, want %v", tc.on, tc.resp.StatusCode, tc.resp.Header, got, tc.want)
		}
	}
	if _, err := compileRetry(&Proxy{}, &ir.Route{Retry: &ir.Retry{Attempts: 1, On: []string{"sometimes"}}}, &routeEntry{}); err == nil ||
		!strings.Contains(err.Error(), "sometimes") {
		t.Errorf("unknown condition accepted: %v", err)
	}
}

func TestBackoffBounds(t *testing.T) {
	rp := &retryPolicy{base: 10 * time.Millisecond, max: 80 * time.Millisecond}
	for n := 1; n <= 10; n++ {
		for i := 0; i < 100; i++ {
			d := rp.backoff(n, nil, time.Now())
			ceil := min(rp.max, rp.base<<(n-1))
			if d < rp.base || d > ceil {
				t.Fatalf("retry %d: wait %v outside [%v, %v]", n, d, rp.base, ceil)
			}
		}
	}
}
