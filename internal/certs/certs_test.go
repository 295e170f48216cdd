package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
)

func pair(t *testing.T, cn string) *ir.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return &ir.Certificate{Origin: cn,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})}
}

func TestPick(t *testing.T) {
	exact, wild, deep, none := pair(t, "exact"), pair(t, "wild"), pair(t, "deep"), pair(t, "none")
	exact.SNI = []string{"a.example.com"}
	wild.SNI = []string{"*.example.com"}
	deep.SNI = []string{"*.b.example.com"}
	s, err := Compile([]*ir.Certificate{exact, wild, deep, none})
	if err != nil {
		t.Fatal(err)
	}
	cn := func(name string) string {
		c := s.Pick(name)
		x, _ := x509.ParseCertificate(c.Certificate[0])
		return x.Subject.CommonName
	}
	for name, want := range map[string]string{
		"a.example.com": "exact", "A.Example.COM.": "exact", "z.example.com": "wild",
		"x.y.example.com": "wild", "c.b.example.com": "deep", "example.com": "none", "": "none",
	} {
		if got := cn(name); got != want {
			t.Errorf("Pick(%q) = %s, want %s", name, got, want)
		}
	}
	if _, err := Compile(nil); !errors.Is(err, ErrNone) {
		t.Errorf("Compile(nil) = %v, want ErrNone", err)
	}
	bad := pair(t, "bad")
	bad.KeyPEM = exact.KeyPEM
	if _, err := Compile([]*ir.Certificate{bad}); err == nil {
		t.Error("a certificate with the wrong key was accepted")
	}
}
