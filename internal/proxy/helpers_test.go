package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/upstream"
	"causeway.dev/causeway/test/testcert"
)

// TestMain fails the package when goroutines outlive the tests.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		http.DefaultClient.CloseIdleConnections()
		deadline := time.Now().Add(10 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before+1 {
				break
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				fmt.Fprintf(os.Stderr, "goroutine leak: %d before, %d after\n%s\n", before, n, buf)
				code = 1
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	os.Exit(code)
}

// env is a proxy under test with its upstream manager.
type env struct {
	t  *testing.T
	p  *Proxy
	up *upstream.Manager
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	up := upstream.NewManager(upstream.Options{})
	opts.Upstreams = up
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e := &env{t: t, p: New(opts), up: up}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.p.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		up.Close()
	})
	return e
}

// apply applies cfg and fails the test on error.
func (e *env) apply(cfg *ir.Config) {
	e.t.Helper()
	if err := e.p.Apply(cfg); err != nil {
		e.t.Fatalf("apply: %v", err)
	}
}

// url returns the base URL of the named listener.
func (e *env) url(listener string) string {
	e.t.Helper()
	a := e.p.Addr(listener)
	if a == nil {
		e.t.Fatalf("listener %s not bound", listener)
	}
	scheme := "http"
	for _, l := range e.p.Config().Listeners {
		if l.Name == listener && l.Protocol == ir.ProtocolHTTPS {
			scheme = "https"
		}
	}
	return scheme + "://" + a.String()
}

// config builds a one-listener configuration ("main", plain HTTP, port 0)
// serving routes on domain "*" and the given clusters.
func config(routes []*ir.Route, clusters ...*ir.Cluster) *ir.Config {
	return &ir.Config{
		Listeners: []*ir.Listener{{
			Name: "main", Address: "127.0.0.1", Port: 0, Protocol: ir.ProtocolHTTP,
			VirtualHosts: []*ir.VirtualHost{{Domain: "*", Gateway: "default/gw", Routes: routes}},
			Gateways:     []string{"default/gw"},
		}},
		Clusters: clusters,
	}
}

// prefixRoute routes a path prefix to backends.
func prefixRoute(name, prefix string, backends ...*ir.Backend) *ir.Route {
	return &ir.Route{
		Name:     name,
		Origin:   "test " + name,
		Match:    ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: prefix}},
		Backends: backends,
	}
}

func backend(cluster string, weight int32) *ir.Backend {
	return &ir.Backend{Cluster: cluster, Weight: weight, Name: "be-" + cluster}
}

// cluster names a cluster of plain HTTP/1.1 endpoints at the given URLs or
// host:port addresses.
func cluster(name string, addrs ...string) *ir.Cluster {
	c := &ir.Cluster{Name: name, Protocol: ir.UpstreamHTTP1, Endpoints: []ir.Endpoint{}}
	for _, a := range addrs {
		c.Endpoints = append(c.Endpoints, ir.Endpoint{Address: strings.TrimPrefix(a, "http://")})
	}
	return c
}

// backendServer starts an httptest server closed at cleanup.
func backendServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// textBackend answers every request with body.
func textBackend(t *testing.T, body string) *httptest.Server {
	return backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, body)
	})
}

// client returns a plain HTTP/1.1 client whose idle connections are closed
// at cleanup.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// get sends a request and returns status, body and response.
func get(t *testing.T, c *http.Client, method, url string, hdr map[string]string) (int, string, *http.Response) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, string(b), resp
}

// selfSigned returns a PEM certificate and key for the given names and
// 127.0.0.1, where the tests' clients dial.
func selfSigned(t testing.TB, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	c := testcert.SelfSigned(t, slices.Concat(names, []string{"127.0.0.1"})...)
	return c.CertPEM, c.KeyPEM
}
