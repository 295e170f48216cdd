package certs

import (
	"crypto/x509"
	"errors"
	"testing"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/test/testcert"
)

func pair(t *testing.T, cn string) *ir.Certificate {
	t.Helper()
	c := testcert.SelfSigned(t, cn)
	return &ir.Certificate{Origin: cn, CertPEM: c.CertPEM, KeyPEM: c.KeyPEM}
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
