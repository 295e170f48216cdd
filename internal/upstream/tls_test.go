package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/test/testcert"
)

// newTLSBackend serves h over TLS with cert; h2 enables HTTP/2 by ALPN;
// clientCAs, when set, requires a client certificate they signed.
func newTLSBackend(t testing.TB, cert tls.Certificate, h2 bool, clientCAs *testcert.CA, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.EnableHTTP2 = h2
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCAs != nil {
		s.TLS.ClientCAs = clientCAs.Pool
		s.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are the point
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// whoami answers with what the backend saw of the connection.
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	cn := "-"
	if len(r.TLS.PeerCertificates) > 0 {
		cn = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	io.WriteString(w, r.Proto+" sni="+r.TLS.ServerName+" alpn="+r.TLS.NegotiatedProtocol+" client="+cn)
})

func tlsCluster(name string, addr string, proto ir.UpstreamProtocol, t *ir.UpstreamTLS) *ir.Cluster {
	return &ir.Cluster{Name: name, Protocol: proto, Endpoints: []ir.Endpoint{{Address: addr}}, TLS: t}
}

// logBuffer collects log lines, safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestUpstreamTLS(t *testing.T) {
	checkLeaks(t)
	ca, other := testcert.NewCA(t, "backend CA"), testcert.NewCA(t, "other CA")
	srvCert := ca.Server(t, "backend", "backend.test", "*.wild.test", "spiffe://example.org/ns/default/sa/backend").TLS
	addr := strings.TrimPrefix(newTLSBackend(t, srvCert, false, nil, whoami).URL, "https://")

	cases := []struct {
		name    string
		tls     ir.UpstreamTLS
		want    string // body prefix on success
		wantErr string // error substring on failure
	}{
		{name: "ca and hostname", tls: ir.UpstreamTLS{SNI: "backend.test", CACertPEM: ca.CertPEM},
			want: "HTTP/1.1 sni=backend.test alpn=http/1.1 client=-"},
		{name: "wrong ca", tls: ir.UpstreamTLS{SNI: "backend.test", CACertPEM: other.CertPEM},
			wantErr: "certificate signed by unknown authority"},
		{name: "system pool does not know a private ca", tls: ir.UpstreamTLS{SNI: "backend.test", SystemCAs: true},
			wantErr: "certificate signed by unknown authority"},
		{name: "no ca trusts nothing", tls: ir.UpstreamTLS{SNI: "backend.test"},
			wantErr: "certificate signed by unknown authority"},
		{name: "hostname mismatch", tls: ir.UpstreamTLS{SNI: "elsewhere.test", CACertPEM: ca.CertPEM},
			wantErr: "not elsewhere.test"},
		{name: "san dns replaces hostname", tls: ir.UpstreamTLS{SNI: "elsewhere.test", CACertPEM: ca.CertPEM, SubjectAltNames: []string{"nope.test", "backend.test"}},
			want: "HTTP/1.1 sni=elsewhere.test"},
		{name: "san dns against a wildcard certificate", tls: ir.UpstreamTLS{SNI: "x", CACertPEM: ca.CertPEM, SubjectAltNames: []string{"a.wild.test"}},
			want: "HTTP/1.1 sni=x"},
		{name: "san uri", tls: ir.UpstreamTLS{SNI: "backend.test", CACertPEM: ca.CertPEM, SubjectAltNames: []string{"spiffe://example.org/ns/default/sa/backend"}},
			want: "HTTP/1.1 sni=backend.test"},
		{name: "wrong san", tls: ir.UpstreamTLS{SNI: "backend.test", CACertPEM: ca.CertPEM, SubjectAltNames: []string{"other.test", "spiffe://example.org/ns/default/sa/other"}},
			wantErr: "match none of"},
		{name: "san still needs the ca", tls: ir.UpstreamTLS{SNI: "backend.test", CACertPEM: other.CertPEM, SubjectAltNames: []string{"backend.test"}},
			wantErr: "certificate signed by unknown authority"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newManager(t, Options{}, tlsCluster("c", addr, ir.UpstreamHTTP1, &tc.tls))
			resp, err := m.Cluster("c").RoundTrip(newReq(context.Background(), "GET", "/", nil))
			if tc.wantErr != "" {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request succeeded, want an error with %q", tc.wantErr)
				}
				if !errors.Is(err, ErrConnect) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want ErrConnect with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.HasPrefix(string(body), tc.want) {
				t.Fatalf("backend saw %q, want %q", body, tc.want)
			}
		})
	}
}

// TestUpstreamTLSLogOnce: a failing backend logs its verification error
// once, naming the cluster, however many requests fail.
func TestUpstreamTLSLogOnce(t *testing.T) {
	checkLeaks(t)
	ca, other := testcert.NewCA(t, "backend CA"), testcert.NewCA(t, "other CA")
	srvCert := ca.Server(t, "backend", "backend.test").TLS
	addr := strings.TrimPrefix(newTLSBackend(t, srvCert, false, nil, whoami).URL, "https://")
	var logs logBuffer
	m := newManager(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		tlsCluster("service/default/app/443", addr, ir.UpstreamHTTP1, &ir.UpstreamTLS{SNI: "backend.test", CACertPEM: other.CertPEM}))
	for range 5 {
		if _, err := m.Cluster("service/default/app/443").RoundTrip(newReq(context.Background(), "GET", "/", nil)); !errors.Is(err, ErrConnect) {
			t.Fatalf("error %v, want ErrConnect", err)
		}
	}
	out := logs.String()
	if n := strings.Count(out, "upstream TLS handshake failed"); n != 1 {
		t.Fatalf("%d log lines, want 1:\n%s", n, out)
	}
	for _, want := range []string{"cluster=service/default/app/443", "unknown authority", "sni=backend.test"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
}

// TestUpstreamTLSRotation: a new CA in a reload takes effect at once.
func TestUpstreamTLSRotation(t *testing.T) {
	checkLeaks(t)
	ca, other := testcert.NewCA(t, "backend CA"), testcert.NewCA(t, "other CA")
	srvCert := ca.Server(t, "backend", "backend.test").TLS
	addr := strings.TrimPrefix(newTLSBackend(t, srvCert, false, nil, whoami).URL, "https://")
	m := newManager(t, Options{}, tlsCluster("c", addr, ir.UpstreamHTTP1, &ir.UpstreamTLS{SNI: "backend.test", CACertPEM: other.CertPEM}))
	if _, err := m.Cluster("c").RoundTrip(newReq(context.Background(), "GET", "/", nil)); !errors.Is(err, ErrConnect) {
		t.Fatalf("error %v, want ErrConnect", err)
	}
	m.Update([]*ir.Cluster{tlsCluster("c", addr, ir.UpstreamHTTP1, &ir.UpstreamTLS{SNI: "backend.test", CACertPEM: ca.CertPEM})})
	if got := do(t, m.Cluster("c"), "/"); !strings.HasPrefix(got, "HTTP/1.1 sni=backend.test") {
		t.Fatalf("got %q", got)
	}
	// And back to plaintext refuses to talk to a TLS server.
	m.Update([]*ir.Cluster{h1Cluster("c", addr)})
	resp, err := m.Cluster("c").RoundTrip(newReq(context.Background(), "GET", "/", nil))
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plaintext to a TLS server: status %d", resp.StatusCode)
		}
	}
}

func TestUpstreamMutualTLS(t *testing.T) {
	checkLeaks(t)
	ca, clientCA := testcert.NewCA(t, "backend CA"), testcert.NewCA(t, "client CA")
	srvCert := ca.Server(t, "backend", "backend.test").TLS
	gateway := clientCA.Client(t, "gateway")
	certPEM, keyPEM := gateway.CertPEM, gateway.KeyPEM
	addr := strings.TrimPrefix(newTLSBackend(t, srvCert, false, clientCA, whoami).URL, "https://")

	withCert := &ir.UpstreamTLS{SNI: "backend.test", CACertPEM: ca.CertPEM, ClientCertPEM: certPEM, ClientKeyPEM: keyPEM}
	m := newManager(t, Options{}, tlsCluster("with", addr, ir.UpstreamHTTP1, withCert),
		tlsCluster("without", addr, ir.UpstreamHTTP1, &ir.UpstreamTLS{SNI: "backend.test", CACertPEM: ca.CertPEM}),
		tlsCluster("badkey", addr, ir.UpstreamHTTP1, &ir.UpstreamTLS{SNI: "backend.test", CACertPEM: ca.CertPEM, ClientCertPEM: certPEM, ClientKeyPEM: []byte("junk")}))
	if got := do(t, m.Cluster("with"), "/"); !strings.HasSuffix(got, "client=gateway") {
		t.Fatalf("backend saw %q, want client=gateway", got)
	}
	// Without a certificate the server refuses; under TLS 1.3 the client
	// learns it when reading the response, so this is a request error
	// rather than a connect failure.
	resp, err := m.Cluster("without").RoundTrip(newReq(context.Background(), "GET", "/", nil))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("request without a client certificate succeeded: %d", resp.StatusCode)
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("error %v does not say a certificate is missing", err)
	}
	if _, err := m.Cluster("badkey").RoundTrip(newReq(context.Background(), "GET", "/", nil)); !errors.Is(err, ErrConnect) || !strings.Contains(err.Error(), "client certificate") {
		t.Fatalf("bad key pair: error %v, want ErrConnect naming the client certificate", err)
	}
}

// TestUpstreamH2TLS: an h2c cluster with TLS speaks HTTP/2 over TLS
// (ALPN h2), as a GRPCRoute to an HTTPS backend needs.
func TestUpstreamH2TLS(t *testing.T) {
	checkLeaks(t)
	ca := testcert.NewCA(t, "backend CA")
	srvCert := ca.Server(t, "backend", "backend.test").TLS
	addr := strings.TrimPrefix(newTLSBackend(t, srvCert, true, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		b, _ := io.ReadAll(r.Body)
		whoami(w, r)
		io.WriteString(w, " body="+string(b))
		w.Header().Set("Grpc-Status", "0")
	})).URL, "https://")
	m := newManager(t, Options{}, tlsCluster("c", addr, ir.UpstreamH2C, &ir.UpstreamTLS{SNI: "backend.test", CACertPEM: ca.CertPEM}))
	for i := range 3 {
		resp, err := m.Cluster("c").RoundTrip(newReq(context.Background(), "POST", "/svc/Method", strings.NewReader("hello")))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "HTTP/2.0 sni=backend.test alpn=h2 client=- body=hello"; string(body) != want {
			t.Fatalf("request %d: backend saw %q, want %q", i, body, want)
		}
		if resp.Trailer.Get("Grpc-Status") != "0" {
			t.Fatalf("trailers %v", resp.Trailer)
		}
	}
	// A wrong CA fails as a connect failure over h2 too.
	other := testcert.NewCA(t, "other CA")
	m.Update([]*ir.Cluster{tlsCluster("c", addr, ir.UpstreamH2C, &ir.UpstreamTLS{SNI: "backend.test", CACertPEM: other.CertPEM})})
	if _, err := m.Cluster("c").RoundTrip(newReq(context.Background(), "GET", "/", nil)); !errors.Is(err, ErrConnect) {
		t.Fatalf("error %v, want ErrConnect", err)
	}
}
