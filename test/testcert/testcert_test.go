package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"
)

func TestServerAndClientVerifyAgainstTheCA(t *testing.T) {
	ca, other := NewCA(t, "ca"), NewCA(t, "ca")
	srv := ca.Server(t, "backend", "backend.test", "*.wild.test", "127.0.0.1", "spiffe://example.org/sa/backend")
	if got := srv.Leaf.DNSNames; len(got) != 2 || got[0] != "backend.test" || got[1] != "*.wild.test" {
		t.Errorf("DNS SANs %v", got)
	}
	if got := srv.Leaf.IPAddresses; len(got) != 1 || !got[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("IP SANs %v", got)
	}
	if got := srv.Leaf.URIs; len(got) != 1 || got[0].String() != "spiffe://example.org/sa/backend" {
		t.Errorf("URI SANs %v", got)
	}
	if srv.Leaf.Subject.CommonName != "backend" {
		t.Errorf("common name %q", srv.Leaf.Subject.CommonName)
	}
	for _, name := range []string{"backend.test", "a.wild.test", "127.0.0.1"} {
		if _, err := srv.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: name}); err != nil {
			t.Errorf("server for %s: %v", name, err)
		}
	}
	if _, err := srv.Leaf.Verify(x509.VerifyOptions{Roots: other.Pool}); err == nil {
		t.Error("a certificate verified against another CA of the same name")
	}
	cl := ca.Client(t, "alice")
	if _, err := cl.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client: %v", err)
	}
	if _, err := cl.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool}); err == nil {
		t.Error("a client certificate verified for server authentication")
	}
}

func TestFormsAgree(t *testing.T) {
	c := SelfSigned(t, "localhost", "127.0.0.1")
	pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if string(pair.Certificate[0]) != string(c.TLS.Certificate[0]) || string(c.Leaf.Raw) != string(c.TLS.Certificate[0]) {
		t.Error("PEM, tls.Certificate and Leaf differ")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.CertPEM)
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil {
		t.Errorf("self-signed: %v", err)
	}
	if a, b := SelfSigned(t, "x"), SelfSigned(t, "x"); a.Leaf.SerialNumber.Cmp(b.Leaf.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}
}

func TestExpired(t *testing.T) {
	ca := NewCA(t, "ca")
	c := ca.Issue(t, Options{CommonName: "old", SANs: []string{"old.test"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: "old.test"}); err == nil {
		t.Error("an expired certificate verified")
	}
	if len(c.Leaf.ExtKeyUsage) != 0 {
		t.Errorf("extended key usage %v, want none", c.Leaf.ExtKeyUsage)
	}
}
