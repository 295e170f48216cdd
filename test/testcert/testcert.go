// Package testcert makes throwaway X.509 certificates for tests: a CA
// that issues server and client certificates, and self-signed server
// certificates, each in the forms tests hand to the code under test (PEM
// for the IR and for files, tls.Certificate for Go servers and clients).
// It stands outside the data flow: only _test.go files may import it
// (test/arch checks this).
//
// Keys are ECDSA P-256, private keys PEM-encoded as PKCS #8; certificates
// are valid from an hour ago to an hour from now unless Options say
// otherwise. Every failure ends the test with t.Fatal.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// CA is a certificate authority of one test.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	Pool    *x509.CertPool // holds Cert alone: the roots a peer trusts
}

// NewCA makes a self-signed CA whose common name is name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	c := create(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}, nil, Options{})
	pool := x509.NewCertPool()
	pool.AddCert(c.Leaf)
	return &CA{Cert: c.Leaf, Key: c.key, CertPEM: c.CertPEM, Pool: pool}
}

// Cert is an issued certificate and its key.
type Cert struct {
	Leaf    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte          // PKCS #8
	TLS     tls.Certificate // the leaf alone (no chain), Leaf set
	key     *ecdsa.PrivateKey
}

// Options shape a certificate beyond what Server and Client set.
type Options struct {
	// CommonName is the subject's common name; empty leaves it empty.
	CommonName string
	// Organization is the subject's organization; nil leaves it out.
	Organization []string
	// SANs are subject alternative names: an IP address, a URI (anything
	// with "://"), else a DNS name (wildcards allowed).
	SANs []string
	// Usage is the extended key usage; nil leaves the extension out,
	// which Go's verifier takes as any usage.
	Usage []x509.ExtKeyUsage
	// NotBefore and NotAfter bound the validity; zero is an hour before,
	// resp. after, now. Set them in the past for an expired certificate.
	NotBefore, NotAfter time.Time
}

// Server issues a server-authentication certificate for cn and sans.
func (ca *CA) Server(t testing.TB, cn string, sans ...string) *Cert {
	t.Helper()
	return ca.Issue(t, Options{CommonName: cn, SANs: sans, Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
}

// Client issues a client-authentication certificate for cn and sans.
func (ca *CA) Client(t testing.TB, cn string, sans ...string) *Cert {
	t.Helper()
	return ca.Issue(t, Options{CommonName: cn, SANs: sans, Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
}

// Issue issues a leaf certificate as o says.
func (ca *CA) Issue(t testing.TB, o Options) *Cert {
	t.Helper()
	return create(t, leafTemplate(t, o), ca, o)
}

// SelfSigned makes a self-signed server certificate: names[0] is its
// common name and every name a SAN, as in Options.SANs. A peer trusts it
// by putting CertPEM in its roots.
func SelfSigned(t testing.TB, names ...string) *Cert {
	t.Helper()
	if len(names) == 0 {
		t.Fatal("testcert.SelfSigned: no names")
	}
	o := Options{CommonName: names[0], SANs: names, Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	return create(t, leafTemplate(t, o), nil, o)
}

func leafTemplate(t testing.TB, o Options) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: o.CommonName, Organization: o.Organization},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: o.Usage,
	}
	for _, s := range o.SANs {
		if ip := net.ParseIP(s); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if strings.Contains(s, "://") {
			u, err := url.Parse(s)
			if err != nil {
				t.Fatalf("testcert: SAN %q: %v", s, err)
			}
			tmpl.URIs = append(tmpl.URIs, u)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, s)
		}
	}
	return tmpl
}

// create fills in the serial number and validity of tmpl, signs it with
// a fresh key by issuer (self-signed when nil) and encodes the result.
func create(t testing.TB, tmpl *x509.Certificate, issuer *CA, o Options) *Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Random serials: certificates of one issuer must differ, also across
	// CAs of the same name in one test.
	tmpl.SerialNumber, err = rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(time.Hour)
	if !o.NotBefore.IsZero() {
		tmpl.NotBefore = o.NotBefore
	}
	if !o.NotAfter.IsZero() {
		tmpl.NotAfter = o.NotAfter
	}
	parent, signer := tmpl, key
	if issuer != nil {
		parent, signer = issuer.Cert, issuer.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatalf("testcert: create certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &Cert{
		Leaf:    leaf,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		TLS:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		key:     key,
	}
}
