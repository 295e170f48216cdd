package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/quic-go/quic-go/http3"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/telemetry"
	"causeway.dev/causeway/internal/upstream"
)

// misdirectedNames are every SNI and Host the cases use; the one test
// certificate carries them all, so that clients verify it whatever the SNI.
var misdirectedNames = []string{
	"localhost", "example.org", "second-example.org", "unknown-example.org",
	"third-example.wildcard.org", "fourth-example.wildcard.org", "fith-example.wildcard.org",
}

// misdirectedConfig is the IR the translator makes of the conformance
// Gateway same-namespace-with-https-listener and the routes of
// HTTPRouteHTTPSListenerDetectMisdirectedRequests (see
// internal/translate/testdata/misdirected.out.yaml): listeners "" (route
// for example.org), second-example.org, *.wildcard.org and
// fourth-example.wildcard.org on one socket. Each backend answers its name.
// catchAll false drops the listener without hostname.
func misdirectedConfig(t testing.TB, catchAll bool, h3 bool) (*ir.Config, *x509.CertPool, *atomic.Int64) {
	var hits atomic.Int64
	var clusters []*ir.Cluster
	for _, name := range []string{"v1", "v2", "v3", "v4"} {
		be := benchOrTestBackend(t, name, &hits)
		clusters = append(clusters, cluster(name, be))
	}
	route := func(be string) []*ir.Route {
		return []*ir.Route{prefixRoute("route-"+be, "/detect-misdirected-requests", backend(be, 1))}
	}
	certPEM, keyPEM := selfSigned(t, misdirectedNames...)
	l := &ir.Listener{
		Name: "tls", Address: "127.0.0.1", Protocol: ir.ProtocolHTTPS,
		TLS:          &ir.TLS{Certificates: []*ir.Certificate{{CertPEM: certPEM, KeyPEM: keyPEM, Origin: "test"}}},
		SNIHostnames: []string{"fourth-example.wildcard.org", "second-example.org", "*.wildcard.org", "*"},
		VirtualHosts: []*ir.VirtualHost{
			{Domain: "example.org", Gateway: "gw", Routes: route("v1")},
			{Domain: "fourth-example.wildcard.org", Gateway: "gw", Routes: route("v4")},
			{Domain: "second-example.org", Gateway: "gw", Routes: route("v2")},
			{Domain: "*.wildcard.org", Gateway: "gw", Routes: route("v3")},
		},
		Gateways: []string{"gw"},
	}
	if !catchAll {
		l.SNIHostnames = l.SNIHostnames[:3]
		l.VirtualHosts = l.VirtualHosts[1:]
	}
	if h3 {
		l.Settings = &ir.ListenerSettings{HTTP3: true}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return &ir.Config{Listeners: []*ir.Listener{l}, Clusters: clusters}, pool, &hits
}

// benchOrTestBackend starts a backend answering name and counting hits.
func benchOrTestBackend(t testing.TB, name string, hits *atomic.Int64) string {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s.URL
}

// misdirectedCases is the conformance table, plus a Host with a port and
// in upper case; backend "" means no backend may be reached.
var misdirectedCases = []struct {
	sni, host string
	code      int
	backend   string
}{
	{"example.org", "example.org", 200, "v1"},
	{"example.org", "second-example.org", 421, ""},
	{"example.org", "unknown-example.org", 404, ""},

	{"second-example.org", "second-example.org", 200, "v2"},
	{"second-example.org", "example.org", 421, ""},
	{"second-example.org", "unknown-example.org", 421, ""},

	{"third-example.wildcard.org", "third-example.wildcard.org", 200, "v3"},
	{"third-example.wildcard.org", "fith-example.wildcard.org", 200, "v3"},
	{"third-example.wildcard.org", "fourth-example.wildcard.org", 421, ""},
	{"third-example.wildcard.org", "second-example.org", 421, ""},
	{"third-example.wildcard.org", "unknown-example.org", 421, ""},

	{"fourth-example.wildcard.org", "fourth-example.wildcard.org", 200, "v4"},
	{"fourth-example.wildcard.org", "fith-example.wildcard.org", 421, ""},

	{"unknown-example.org", "example.org", 200, "v1"},
	{"unknown-example.org", "unknown-example.org", 404, ""},

	{"second-example.org", "Second-Example.ORG:443", 200, "v2"},
	{"second-example.org", "EXAMPLE.org:8443", 421, ""},
	{"Fourth-Example.Wildcard.org", "fourth-example.wildcard.org.", 200, "v4"},
}

// misdirectedClient returns a client that sends sni in the ClientHello
// ("" sends none: the URL names an IP address) over proto 1, 2 or 3.
func misdirectedClient(t *testing.T, pool *x509.CertPool, sni string, proto int) *http.Client {
	tc := &tls.Config{RootCAs: pool, ServerName: sni}
	if proto == 3 {
		tr := &http3.Transport{TLSClientConfig: tc}
		t.Cleanup(func() { tr.Close() })
		return &http.Client{Transport: tr}
	}
	var protos http.Protocols
	protos.SetHTTP1(proto == 1)
	protos.SetHTTP2(proto == 2)
	tr := &http.Transport{TLSClientConfig: tc, Protocols: &protos, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestMisdirectedConformance runs the conformance table on a real socket
// with real TLS clients over HTTP/1.1, HTTP/2 and HTTP/3. One client per
// SNI sends every Host of that SNI on one connection, as a client
// coalescing connections would.
func TestMisdirectedConformance(t *testing.T) {
	cfg, pool, hits := misdirectedConfig(t, true, true)
	var buf syncBuffer
	al := telemetry.NewAccessLog(&buf)
	e := newEnv(t, Options{AccessLog: al})
	e.apply(cfg)
	url := e.url("tls") + "/detect-misdirected-requests"
	var want421 int
	for _, proto := range []int{1, 2, 3} {
		clients := map[string]*http.Client{}
		for _, tc := range misdirectedCases {
			c := clients[tc.sni]
			if c == nil {
				c = misdirectedClient(t, pool, tc.sni, proto)
				clients[tc.sni] = c
			}
			before := hits.Load()
			code, body, resp := get(t, c, "GET", url, map[string]string{"Host": tc.host})
			if resp.ProtoMajor != proto {
				t.Fatalf("HTTP/%d wanted, got %s", proto, resp.Proto)
			}
			reached := hits.Load() - before
			switch {
			case code != tc.code:
				t.Errorf("HTTP/%d SNI %s Host %s: status %d (%q), want %d", proto, tc.sni, tc.host, code, body, tc.code)
			case tc.backend != "" && body != tc.backend:
				t.Errorf("HTTP/%d SNI %s Host %s: backend %q, want %s", proto, tc.sni, tc.host, body, tc.backend)
			case tc.backend == "" && reached != 0:
				t.Errorf("HTTP/%d SNI %s Host %s: a backend was reached", proto, tc.sni, tc.host)
			case code == 421 && !strings.HasPrefix(body, "misdirected request"):
				t.Errorf("HTTP/%d SNI %s Host %s: body %q", proto, tc.sni, tc.host, body)
			}
			if tc.code == 421 {
				want421++
			}
		}
	}
	if err := al.Close(); err != nil {
		t.Fatal(err)
	}
	var got421 int
	for line := range strings.Lines(buf.b.String()) {
		var v struct {
			Status int    `json:"status"`
			Flags  string `json:"flags"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if (v.Status == 421) != (v.Flags == "MR") {
			t.Errorf("access log: status %d with flags %q", v.Status, v.Flags)
		}
		if v.Status == 421 {
			got421++
		}
	}
	if got421 != want421 {
		t.Errorf("access log: %d entries with 421, want %d", got421, want421)
	}
}

// TestMisdirectedNoSNI: a client sending no server name is held to the
// listener without hostname when there is one, and not checked otherwise.
func TestMisdirectedNoSNI(t *testing.T) {
	for _, catchAll := range []bool{true, false} {
		cfg, pool, _ := misdirectedConfig(t, catchAll, false)
		e := newEnv(t, Options{})
		e.apply(cfg)
		url := e.url("tls") + "/detect-misdirected-requests"
		for _, proto := range []int{1, 2} {
			c := misdirectedClient(t, pool, "", proto)
			cases := []struct {
				host string
				code int
			}{
				{"second-example.org", 421},
				{"third-example.wildcard.org", 421},
				{"unknown-example.org", 404},
			}
			if catchAll {
				cases = append(cases, struct {
					host string
					code int
				}{"example.org", 200})
			} else {
				for i := range cases[:2] {
					cases[i].code = 200
				}
			}
			for _, tc := range cases {
				if code, body, _ := get(t, c, "GET", url, map[string]string{"Host": tc.host}); code != tc.code {
					t.Errorf("catch-all %v, HTTP/%d, no SNI, Host %s: %d (%q), want %d", catchAll, proto, tc.host, code, body, tc.code)
				}
			}
		}
	}
}

// TestMisdirectedSingleHostname: without SNIHostnames (one listener
// hostname on the socket) nothing is checked, whatever the SNI.
func TestMisdirectedSingleHostname(t *testing.T) {
	cfg, pool, _ := misdirectedConfig(t, true, false)
	cfg.Listeners[0].SNIHostnames = nil
	e := newEnv(t, Options{})
	e.apply(cfg)
	c := misdirectedClient(t, pool, "example.org", 2)
	code, body, _ := get(t, c, "GET", e.url("tls")+"/detect-misdirected-requests", map[string]string{"Host": "second-example.org"})
	if code != 200 || body != "v2" {
		t.Errorf("no SNIHostnames: %d %q, want 200 v2", code, body)
	}
	e.p.mu.Lock()
	g := e.p.listeners["tls"].graph.Load()
	e.p.mu.Unlock()
	if g.sni != nil {
		t.Error("a listener without SNIHostnames has a selector")
	}
}

func TestMisdirectedCompile(t *testing.T) {
	bad := &ir.Listener{Protocol: ir.ProtocolHTTPS, SNIHostnames: []string{"a.*.example", "*"}}
	if _, err := compileMisdirect(bad); err == nil {
		t.Error("a misplaced wildcard is accepted")
	}
	plain := &ir.Listener{Protocol: ir.ProtocolHTTP, SNIHostnames: []string{"a.example", "*"}}
	if s, err := compileMisdirect(plain); s != nil || err != nil {
		t.Errorf("plain HTTP listener: %v, %v; want no check", s, err)
	}
	s, err := compileMisdirect(&ir.Listener{Protocol: ir.ProtocolHTTPS,
		SNIHostnames: []string{"a.b.example", "*.b.example", "*.example"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want int32
	}{
		{"a.b.example", 0}, {"A.B.Example.", 0}, {"c.b.example", 1}, {"x.c.b.example", 1},
		{"b.example", 2}, {"x.example", 2}, {"example", -1}, {"", -1}, {".example", -1},
		{strings.Repeat("x", 300) + ".example", -1},
	} {
		if got := s.index(tc.name); got != tc.want {
			t.Errorf("index(%q) = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestMisdirectedAllocs: the check allocates nothing, upper case included.
func TestMisdirectedAllocs(t *testing.T) {
	s, err := compileMisdirect(&ir.Listener{Protocol: ir.ProtocolHTTPS,
		SNIHostnames: []string{"fourth-example.wildcard.org", "second-example.org", "*.wildcard.org", "*"}})
	if err != nil {
		t.Fatal(err)
	}
	r := &http.Request{Host: "Third-Example.wildcard.org:443", TLS: &tls.ConnectionState{ServerName: "fith-example.wildcard.org"}}
	if n := testing.AllocsPerRun(100, func() {
		if s.misdirected(r) {
			t.Fatal("misdirected")
		}
	}); n != 0 {
		t.Errorf("%v allocations per check", n)
	}
}

// BenchmarkMisdirected measures the check alone (SNI and Host equal, or
// two names of one wildcard listener), and whole HTTPS exchanges
// (client, proxy and backend in one process, HTTP/1.1 keep-alive) on the
// conformance listener without SNIHostnames ("off": what every socket with
// one hostname runs) and with them ("on").
func BenchmarkMisdirected(b *testing.B) {
	for name, sni := range map[string]string{"check-same": "third-example.wildcard.org", "check-other": "fith-example.wildcard.org"} {
		b.Run(name, func(b *testing.B) {
			s, _ := compileMisdirect(&ir.Listener{Protocol: ir.ProtocolHTTPS,
				SNIHostnames: []string{"fourth-example.wildcard.org", "second-example.org", "*.wildcard.org", "*"}})
			r := &http.Request{Host: "third-example.wildcard.org:443", TLS: &tls.ConnectionState{ServerName: sni}}
			b.ReportAllocs()
			for b.Loop() {
				if s.misdirected(r) {
					b.Fatal("misdirected")
				}
			}
		})
	}
	for _, on := range []bool{false, true} {
		name := "exchange-off"
		if on {
			name = "exchange-on"
		}
		b.Run(name, func(b *testing.B) {
			cfg, pool, _ := misdirectedConfig(b, true, false)
			if !on {
				cfg.Listeners[0].SNIHostnames = nil
			}
			up := upstream.NewManager(upstream.Options{})
			defer up.Close()
			p := New(Options{Upstreams: up, Logger: slog.New(slog.DiscardHandler)})
			defer p.Shutdown(b.Context())
			if err := p.Apply(cfg); err != nil {
				b.Fatal(err)
			}
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "third-example.wildcard.org"},
				MaxIdleConnsPerHost: 64, DisableCompression: true}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			url := "https://" + p.Addr("tls").String() + "/detect-misdirected-requests"
			b.ReportAllocs()
			b.SetParallelism(4)
			b.ResetTimer()
			cpu0 := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 16)
				for pb.Next() {
					req, _ := http.NewRequest("GET", url, nil)
					req.Host = "fith-example.wildcard.org"
					resp, err := c.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					n, _ := io.ReadFull(resp.Body, buf[:2])
					resp.Body.Close()
					if resp.StatusCode != 200 || string(buf[:n]) != "v3" {
						b.Errorf("status %d, body %q", resp.StatusCode, buf[:n])
						return
					}
				}
			})
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
