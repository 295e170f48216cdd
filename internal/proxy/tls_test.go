package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"causeway.dev/causeway/internal/ir"
)

// tlsConfig returns a configuration with one HTTPS listener "tls" holding
// the given certificates, routing everything to cluster "be" at addr.
func tlsConfig(addr string, certs ...*ir.Certificate) *ir.Config {
	cfg := config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", addr))
	l := cfg.Listeners[0]
	l.Name, l.Protocol, l.TLS = "tls", ir.ProtocolHTTPS, &ir.TLS{Certificates: certs}
	return cfg
}

// protoBackend answers with the protocol it was spoken to in.
func protoBackend(t *testing.T) *httptest.Server {
	return backendServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) })
}

func TestHTTP2OverTLS(t *testing.T) {
	be := protoBackend(t)
	certPEM, keyPEM := selfSigned(t, "localhost")
	e := newEnv(t, Options{})
	e.apply(tlsConfig(be.URL, &ir.Certificate{CertPEM: certPEM, KeyPEM: keyPEM}))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	for _, h2 := range []bool{true, false} {
		var protos http.Protocols
		protos.SetHTTP1(!h2)
		protos.SetHTTP2(h2)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Protocols: &protos}
		defer tr.CloseIdleConnections()
		code, body, resp := get(t, &http.Client{Transport: tr}, "GET", e.url("tls")+"/", nil)
		wantMajor := 1
		if h2 {
			wantMajor = 2
		}
		if code != 200 || resp.ProtoMajor != wantMajor || body != "HTTP/1.1" {
			t.Errorf("h2=%v: %d proto %s, backend saw %q", h2, code, resp.Proto, body)
		}
	}
}

func TestH2CPriorKnowledge(t *testing.T) {
	be := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Proto+string(b))
	})
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL)))
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	defer tr.CloseIdleConnections()
	code, body, resp := get(t, &http.Client{Transport: tr}, "GET", e.url("main")+"/", nil)
	if code != 200 || resp.ProtoMajor != 2 || body != "HTTP/1.1" {
		t.Errorf("h2c: %d proto %s, backend saw %q", code, resp.Proto, body)
	}
	// A request body on an HTTP/2 stream, of unknown length.
	resp, err := (&http.Client{Transport: tr}).Post(e.url("main")+"/", "text/plain", io.MultiReader(&pattern{left: 70000}))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || len(b) != len("HTTP/1.1")+70000 {
		t.Errorf("h2c POST: proto %s, %d bytes back", resp.Proto, len(b))
	}
}

func TestUpstreamH2C(t *testing.T) {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	protos.SetHTTP1(true)
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Proto+" "+string(b))
	}))
	be.Config.Protocols = &protos
	be.Start()
	defer be.Close()
	cl := cluster("be", be.URL)
	cl.Protocol = ir.UpstreamH2C
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cl))
	c := client(t)
	code, body, _ := get(t, c, "GET", e.url("main")+"/", nil)
	if code != 200 || body != "HTTP/2.0 " {
		t.Errorf("h2c upstream: %d %q", code, body)
	}
	resp, err := c.Post(e.url("main")+"/", "text/plain", io.MultiReader(&pattern{left: 100}))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "HTTP/2.0 "+string(patternBlock[:100]) {
		t.Errorf("h2c upstream with body: %q", b)
	}
}

func TestSNI(t *testing.T) {
	be := protoBackend(t)
	var certs []*ir.Certificate
	leaves := map[string][]byte{}
	for _, names := range [][]string{{"a.example.com"}, {"*.example.com"}, {"b.example.com"}, {"default.test"}} {
		c, k := selfSigned(t, names...)
		certs = append(certs, &ir.Certificate{SNI: names, CertPEM: c, KeyPEM: k, Origin: names[0]})
		leaves[names[0]] = c
	}
	certs[3].SNI = nil // any name
	e := newEnv(t, Options{})
	e.apply(tlsConfig(be.URL, certs...))
	addr := e.p.Addr("tls").String()
	served := func(sni string) string {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("sni %q: %v", sni, err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	for sni, want := range map[string]string{
		"a.example.com":      "a.example.com",
		"B.Example.com":      "b.example.com",
		"c.example.com":      "*.example.com",
		"x.y.example.com":    "*.example.com",
		"example.com":        "default.test",
		"other.test":         "default.test",
		"":                   "default.test",
		"a.example.com.":     "a.example.com",
		"deep.b.example.com": "*.example.com",
	} {
		if got := served(sni); got != want {
			t.Errorf("SNI %q served %q, want %q", sni, got, want)
		}
	}

	// Certificates change on Apply without rebinding.
	c, k := selfSigned(t, "rotated.example.com")
	e.apply(tlsConfig(be.URL, &ir.Certificate{CertPEM: c, KeyPEM: k}))
	if got := e.p.Addr("tls").String(); got != addr {
		t.Errorf("listener rebound: %s -> %s", addr, got)
	}
	if got := served("a.example.com"); got != "rotated.example.com" {
		t.Errorf("after rotation served %q", got)
	}
}
