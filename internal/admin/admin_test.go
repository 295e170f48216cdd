package admin

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/status"
	"causeway.dev/causeway/internal/telemetry"
)

// source is a Source whose state the test sets.
type source struct {
	cfg   atomic.Pointer[ir.Config]
	rep   atomic.Pointer[status.Report]
	ready atomic.Bool
}

func (s *source) Config() *ir.Config     { return s.cfg.Load() }
func (s *source) Status() *status.Report { return s.rep.Load() }
func (s *source) Ready() bool            { return s.ready.Load() }

func start(t *testing.T, src Source, opts Options) string {
	t.Helper()
	opts.Addr = "127.0.0.1:0"
	s := New(src, opts)
	if s.Addr() != nil {
		t.Fatal("Addr before Start should be nil")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return "http://" + s.Addr().String()
}

func do(t *testing.T, method, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func TestHealthAndReady(t *testing.T) {
	src := &source{}
	base := start(t, src, Options{})
	if code, _, body := do(t, "GET", base+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, _, _ := do(t, "GET", base+"/ready"); code != 503 {
		t.Errorf("/ready before ready = %d, want 503", code)
	}
	src.ready.Store(true)
	if code, _, _ := do(t, "GET", base+"/ready"); code != 200 {
		t.Errorf("/ready when ready = %d, want 200", code)
	}
	if code, _, _ := do(t, "HEAD", base+"/healthz"); code != 200 {
		t.Errorf("HEAD /healthz = %d, want 200", code)
	}
	if code, _, body := do(t, "GET", base+"/"); code != 200 || !strings.Contains(body, "/status") {
		t.Errorf("/ = %d %q", code, body)
	}
	if code, _, _ := do(t, "GET", base+"/nope"); code != 404 {
		t.Errorf("/nope = %d, want 404", code)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	base := start(t, &source{}, Options{})
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		for _, p := range []string{"/healthz", "/config", "/debug/pprof/symbol", "/nope"} {
			code, h, _ := do(t, m, base+p)
			if code != 405 || h.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s = %d (Allow %q), want 405", m, p, code, h.Get("Allow"))
			}
		}
	}
}

func TestConfig(t *testing.T) {
	src := &source{}
	base := start(t, src, Options{})
	if code, _, _ := do(t, "GET", base+"/config"); code != 503 {
		t.Errorf("/config before the first = %d, want 503", code)
	}
	cfg := &ir.Config{Listeners: []*ir.Listener{{
		Name: "0.0.0.0:443", Port: 443, Protocol: ir.ProtocolHTTPS,
		TLS: &ir.TLS{Certificates: []*ir.Certificate{{
			SNI: []string{"a.example.com"}, Origin: "Secret/default/a-tls",
			CertPEM: []byte("-----BEGIN CERTIFICATE-----CERTBYTES"),
			KeyPEM:  []byte("-----BEGIN PRIVATE KEY-----TOPSECRETKEY"),
		}}},
	}}}
	cfg.Finalize()
	src.cfg.Store(cfg)
	code, h, body := do(t, "GET", base+"/config")
	if code != 200 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("/config = %d %s", code, h.Get("Content-Type"))
	}
	if strings.Contains(body, "TOPSECRETKEY") || strings.Contains(body, "PRIVATE KEY") {
		t.Fatalf("/config leaks the private key:\n%s", body)
	}
	if !strings.Contains(body, "\n  \"listeners\"") {
		t.Errorf("/config is not indented:\n%s", body)
	}
	var got ir.Config
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Version != cfg.Version || got.Listeners[0].TLS.Certificates[0].Origin != "Secret/default/a-tls" {
		t.Errorf("/config round trip: %+v", got)
	}
}

func TestStatus(t *testing.T) {
	src := &source{}
	base := start(t, src, Options{})
	if code, _, _ := do(t, "GET", base+"/status"); code != 503 {
		t.Errorf("/status before the first = %d, want 503", code)
	}
	rep := &status.Report{}
	ok := rep.For(status.Ref{Kind: "Gateway", Namespace: "default", Name: "gw"}, status.Source{File: "gw.yaml", Doc: 1})
	ok.Conditions = status.Set(ok.Conditions, status.Condition{Type: status.Accepted, Status: true, Reason: status.ReasonAccepted})
	bad := rep.For(status.Ref{Kind: "HTTPRoute", Namespace: "default", Name: "app"}, status.Source{File: "routes.yaml", Doc: 2})
	bad.Conditions = status.Set(bad.Conditions, status.Condition{
		Type: status.ResolvedRefs, Reason: status.ReasonBackendNotFound,
		Message: "Service default/nope not found", Field: "spec.rules[0].backendRefs[0]",
	})
	src.rep.Store(rep)

	code, _, body := do(t, "GET", base+"/status")
	if code != 200 {
		t.Fatalf("/status = %d", code)
	}
	var got status.Report
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Resources) != 2 || got.Resources[1].Conditions[0].Reason != status.ReasonBackendNotFound {
		t.Errorf("/status: %s", body)
	}

	code, _, body = do(t, "GET", base+"/status?problems=1")
	want := "routes.yaml#2 HTTPRoute/default/app spec.rules[0].backendRefs[0]: ResolvedRefs=False BackendNotFound: Service default/nope not found\n"
	if code != 200 || body != want {
		t.Errorf("/status?problems=1 = %d %q, want %q", code, body, want)
	}
}

func TestMetrics(t *testing.T) {
	m := telemetry.NewMetrics()
	m.Listener("l1").ConnOpened()
	base := start(t, &source{}, Options{Metrics: m.Handler()})
	code, _, body := do(t, "GET", base+"/metrics")
	if code != 200 || !strings.Contains(body, `causeway_downstream_connections_active{listener="l1"} 1`) {
		t.Errorf("/metrics = %d:\n%s", code, body)
	}

	base = start(t, &source{}, Options{})
	if code, _, _ := do(t, "GET", base+"/metrics"); code != 404 {
		t.Errorf("/metrics without a handler = %d, want 404", code)
	}
}

func TestPprof(t *testing.T) {
	// A handler on the default mux must not be reachable: the admin mux is
	// private.
	http.HandleFunc("/admin-test-probe", func(w http.ResponseWriter, r *http.Request) {})
	base := start(t, &source{}, Options{})
	if code, _, _ := do(t, "GET", base+"/admin-test-probe"); code != 404 {
		t.Errorf("default mux reachable: %d", code)
	}
	code, _, body := do(t, "GET", base+"/debug/pprof/")
	if code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ = %d", code)
	}
	code, _, body = do(t, "GET", base+"/debug/pprof/goroutine?debug=1")
	if code != 200 || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("/debug/pprof/goroutine = %d %.100q", code, body)
	}
	if code, _, body = do(t, "GET", base+"/debug/pprof/cmdline"); code != 200 || body == "" {
		t.Errorf("/debug/pprof/cmdline = %d %q", code, body)
	}
}

func TestStartErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := New(&source{}, Options{Addr: ln.Addr().String()})
	if err := s.Start(); err == nil {
		t.Fatal("Start on a taken address succeeded")
	}

	s = New(&source{}, Options{Addr: "127.0.0.1:0"})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	url := "http://" + s.Addr().String() + "/healthz"
	if code, _, _ := do(t, "GET", url); code != 200 {
		t.Fatalf("before shutdown: %d", code)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(url); err == nil {
		resp.Body.Close()
		t.Error("served after Shutdown")
	}
}

func TestDefaultAddr(t *testing.T) {
	if s := New(&source{}, Options{}); s.opts.Addr != "127.0.0.1:9901" {
		t.Errorf("default addr %q", s.opts.Addr)
	}
}
