package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/test/testcert"
)

// issueClient issues a client certificate for cn with a DNS and a URI name,
// and an organization that needs escaping in the XFCC subject.
func issueClient(t testing.TB, ca *testcert.CA, cn string) tls.Certificate {
	t.Helper()
	return ca.Issue(t, testcert.Options{
		CommonName:   cn,
		Organization: []string{"Example, Inc."},
		SANs:         []string{cn + ".example.com", "spiffe://example.org/ns/default/sa/" + cn},
		Usage:        []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}).TLS
}

// mtlsEnv is an HTTPS listener "tls" whose backend echoes the
// X-Forwarded-Client-Cert values it receives.
type mtlsEnv struct {
	*env
	serverPool *x509.CertPool
	cfg        *ir.Config
	hits       atomic.Int64
}

func newMTLS(t *testing.T, cv *ir.ClientValidation, st *ir.ListenerSettings) *mtlsEnv {
	m := &mtlsEnv{env: newEnv(t, Options{})}
	be := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		m.hits.Add(1)
		io.WriteString(w, strings.Join(r.Header.Values(xfccHeader), "|"))
	})
	certPEM, keyPEM := selfSigned(t, "localhost")
	m.serverPool = x509.NewCertPool()
	m.serverPool.AppendCertsFromPEM(certPEM)
	m.cfg = tlsConfig(be.URL, &ir.Certificate{CertPEM: certPEM, KeyPEM: keyPEM})
	m.cfg.Listeners[0].TLS.ClientValidation = cv
	m.cfg.Listeners[0].Settings = st
	m.apply(m.cfg)
	return m
}

// do sends GET / with a fresh connection presenting certs, and a forged
// X-Forwarded-Client-Cert.
func (m *mtlsEnv) do(certs ...tls.Certificate) (string, error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: m.serverPool, Certificates: certs}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", m.url("tls")+"/", nil)
	req.Header.Set(xfccHeader, "Hash=forged;Subject=\"CN=admin\"")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		m.t.Errorf("status %d", resp.StatusCode)
	}
	return string(b), err
}

func wantXFCC(leaf *x509.Certificate) string {
	sum := sha256.Sum256(leaf.Raw)
	return "Hash=" + hex.EncodeToString(sum[:]) + `;Subject="` + leaf.Subject.String() + `";URI=` + leaf.URIs[0].String() + ";DNS=" + leaf.DNSNames[0]
}

func TestClientCertRequired(t *testing.T) {
	ca, other := testcert.NewCA(t, "ca"), testcert.NewCA(t, "other")
	m := newMTLS(t, &ir.ClientValidation{CACertPEM: ca.CertPEM, Origin: "test"}, nil)
	good := issueClient(t, ca, "alice")

	body, err := m.do(good)
	if err != nil {
		t.Fatalf("valid certificate refused: %v", err)
	}
	if want := wantXFCC(good.Leaf); body != want {
		t.Errorf("XFCC at backend:\n got %s\nwant %s", body, want)
	}
	if !strings.Contains(body, `Subject="CN=alice,O=Example\, Inc."`) {
		t.Errorf("subject not in RFC 2253 form: %s", body)
	}
	hits := m.hits.Load()
	if _, err := m.do(); err == nil {
		t.Error("request without a client certificate was served")
	}
	if _, err := m.do(issueClient(t, other, "mallory")); err == nil {
		t.Error("certificate of another CA was accepted")
	}
	if n := m.hits.Load(); n != hits {
		t.Errorf("backend saw %d requests from refused clients", n-hits)
	}

	// Refused at the handshake: the server's alert ends the connection
	// before any HTTP is spoken.
	for _, certs := range [][]tls.Certificate{nil, {issueClient(t, other, "eve")}} {
		c, err := tls.Dial("tcp", m.p.Addr("tls").String(), &tls.Config{RootCAs: m.serverPool, Certificates: certs, NextProtos: []string{"http/1.1"}})
		if err != nil {
			continue // TLS 1.2 style failure, within Handshake
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("handshake with %d certificates: read error %v, want a certificate alert", len(certs), err)
		}
	}
}

func TestClientCertOptional(t *testing.T) {
	ca, other := testcert.NewCA(t, "ca"), testcert.NewCA(t, "other")
	m := newMTLS(t, &ir.ClientValidation{CACertPEM: ca.CertPEM, Optional: true, Origin: "test"}, nil)
	good := issueClient(t, ca, "bob")
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		want  string
	}{
		{"none", nil, ""},
		{"other CA", []tls.Certificate{issueClient(t, other, "eve")}, ""},
		{"valid", []tls.Certificate{good}, wantXFCC(good.Leaf)},
	} {
		body, err := m.do(tc.certs...)
		if err != nil {
			t.Errorf("%s: refused with AllowInsecureFallback: %v", tc.name, err)
			continue
		}
		if body != tc.want {
			t.Errorf("%s: XFCC %q, want %q", tc.name, body, tc.want)
		}
	}
}

func TestXFCCModes(t *testing.T) {
	ca := testcert.NewCA(t, "ca")
	cert := issueClient(t, ca, "carol")
	cv := &ir.ClientValidation{CACertPEM: ca.CertPEM, Origin: "test"}

	m := newMTLS(t, cv, &ir.ListenerSettings{XFCC: ir.XFCCSanitize})
	if body, err := m.do(cert); err != nil || body != "" {
		t.Errorf("Sanitize: backend saw %q (%v), want nothing", body, err)
	}

	m = newMTLS(t, cv, &ir.ListenerSettings{XFCC: ir.XFCCForward})
	body, err := m.do(cert)
	if err != nil {
		t.Fatal(err)
	}
	i, j := strings.Index(body, `;Cert="`), strings.Index(body, `";Chain="`)
	if i < 0 || j < i {
		t.Fatalf("Forward: no Cert and Chain in %s", body)
	}
	p, err := url.QueryUnescape(body[i+len(`;Cert="`) : j])
	if err != nil {
		t.Fatal(err)
	}
	if blk, _ := pem.Decode([]byte(p)); blk == nil || string(blk.Bytes) != string(cert.Leaf.Raw) {
		t.Errorf("Forward: Cert does not decode to the client certificate: %q", p)
	}
	if !strings.HasPrefix(body, wantXFCC(cert.Leaf)[:len("Hash=")+64]) || !strings.HasSuffix(body, ";DNS=carol.example.com") {
		t.Errorf("Forward: %s", body)
	}
}

// TestXFCCStrippedWithoutTLS: a plain HTTP listener never passes on a
// client's X-Forwarded-Client-Cert, in any form.
func TestXFCCStrippedWithoutTLS(t *testing.T) {
	be := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Join(r.Header.Values(xfccHeader), "|"))
	})
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL)))
	for _, name := range []string{"X-Forwarded-Client-Cert", "x-forwarded-client-cert"} {
		req, _ := http.NewRequest("GET", e.url("main")+"/", nil)
		req.Header[name] = []string{"Hash=forged", "By=x"}
		resp, err := client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(b) != 0 {
			t.Errorf("header %s reached the backend as %q", name, b)
		}
	}
}

// BenchmarkXFCC is the per-request cost of X-Forwarded-Client-Cert on a
// kept-alive mTLS connection (the value is cached per connection).
func BenchmarkXFCC(b *testing.B) {
	ca := testcert.NewCA(b, "ca")
	cert := issueClient(b, ca, "bench")
	cc, err := compileClientCert(&ir.Listener{TLS: &ir.TLS{ClientValidation: &ir.ClientValidation{CACertPEM: ca.CertPEM}}})
	if err != nil {
		b.Fatal(err)
	}
	st := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert.Leaf}, VerifiedChains: [][]*x509.Certificate{{cert.Leaf, ca.Cert}}}
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		cc.setXFCC(h, st)
	}
	if h.Get(xfccHeader) == "" {
		b.Fatal("no header set")
	}
}
