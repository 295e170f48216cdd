package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
)

// checkLeaks fails the test if goroutines started during it are still
// running once its cleanups (registered later, so run earlier) are done.
func checkLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutines: %d before, %d after\n%s", before, n, buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// backend is a loopback HTTP/1.1 server that counts its connections.
type backend struct {
	*httptest.Server
	conns  atomic.Int64  // connections accepted
	closed chan struct{} // one value per connection closed
}

func newBackend(t *testing.T, h http.Handler) *backend {
	t.Helper()
	b := &backend{closed: make(chan struct{}, 1024)}
	b.Server = httptest.NewUnstartedServer(h)
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			b.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			b.closed <- struct{}{}
		}
	}
	b.Start()
	t.Cleanup(b.Close)
	return b
}

func (b *backend) addr() string { return b.Listener.Addr().String() }

// waitClosed waits for n connection closes.
func (b *backend) waitClosed(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-b.closed:
		case <-time.After(10 * time.Second):
			t.Fatal("server connection not closed")
		}
	}
}

func newManager(t *testing.T, opts Options, clusters ...*ir.Cluster) *Manager {
	t.Helper()
	m := NewManager(opts)
	m.Update(clusters)
	t.Cleanup(m.Close)
	return m
}

func h1Cluster(name string, addrs ...string) *ir.Cluster {
	c := &ir.Cluster{Name: name, Protocol: ir.UpstreamHTTP1}
	for _, a := range addrs {
		c.Endpoints = append(c.Endpoints, ir.Endpoint{Address: a})
	}
	return c
}

// newReq builds an outbound request as the proxy would: origin-form URL,
// Host set.
func newReq(ctx context.Context, method, target string, body io.Reader) *http.Request {
	req, err := http.NewRequestWithContext(ctx, method, "http://backend.test"+target, body)
	if err != nil {
		panic(err)
	}
	return req
}

// do runs a GET and returns the body.
func do(t *testing.T, c *Cluster, target string) string {
	t.Helper()
	resp, err := c.RoundTrip(newReq(context.Background(), "GET", target, nil))
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", target, err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d", target, resp.StatusCode)
	}
	return string(b)
}

// pattern is an endless, cheap reader of 'x' bytes.
type pattern struct{ n, limit int64 }

var xs = []byte(strings.Repeat("x", 64<<10))

func (p *pattern) Read(b []byte) (int, error) {
	if p.n >= p.limit {
		return 0, io.EOF
	}
	if rem := p.limit - p.n; int64(len(b)) > rem {
		b = b[:rem]
	}
	if len(b) > len(xs) {
		b = b[:len(xs)]
	}
	n := copy(b, xs)
	p.n += int64(n)
	return n, nil
}

// oneShot is a request body that cannot be replayed (no GetBody) and whose
// length is unknown to net/http.
type oneShot struct {
	io.Reader
	mu     sync.Mutex
	closed bool
}

func (o *oneShot) Close() error { o.mu.Lock(); o.closed = true; o.mu.Unlock(); return nil }
