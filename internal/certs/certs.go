// Package certs holds the server certificates of a TLS-terminating
// listener, chosen by SNI. Both the HTTP proxy and the L4 server use it, so
// that a Gateway's HTTPS and TLS listeners pick certificates alike.
package certs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"causeway.dev/causeway/internal/ir"
)

// Set is an immutable set of parsed certificates indexed by SNI pattern.
type Set struct {
	exact map[string]*tls.Certificate // lower-case names
	wild  map[string]*tls.Certificate // "*.example.com" stored as ".example.com"
	any   *tls.Certificate            // first certificate without SNI names
	first *tls.Certificate
}

// ErrNone is returned by Compile for a listener without certificates.
var ErrNone = errors.New("no certificates")

// Compile parses certificates. Earlier certificates win for equal names, as
// the IR lists them in precedence order.
func Compile(list []*ir.Certificate) (*Set, error) {
	s := &Set{exact: map[string]*tls.Certificate{}, wild: map[string]*tls.Certificate{}}
	for i, c := range list {
		if c == nil {
			continue
		}
		cert, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
		if err != nil {
			return nil, fmt.Errorf("certificate %d (%s): %w", i, c.Origin, err)
		}
		if s.first == nil {
			s.first = &cert
		}
		if len(c.SNI) == 0 && s.any == nil {
			s.any = &cert
		}
		for _, n := range c.SNI {
			n = normName(n)
			m, key := s.exact, n
			if strings.HasPrefix(n, "*.") {
				m, key = s.wild, n[1:]
			}
			if _, dup := m[key]; !dup {
				m[key] = &cert
			}
		}
	}
	if s.first == nil {
		return nil, ErrNone
	}
	return s, nil
}

// Pick returns the certificate for a ClientHello's server name: an exact
// name, then the longest wildcard (standing for one or more labels, as in
// Gateway API), then the first certificate without names, then the first.
func (s *Set) Pick(serverName string) *tls.Certificate {
	name := normName(serverName)
	if c := s.exact[name]; c != nil {
		return c
	}
	for i := 1; i < len(name); i++ {
		if name[i] == '.' {
			if c := s.wild[name[i:]]; c != nil {
				return c
			}
		}
	}
	if s.any != nil {
		return s.any
	}
	return s.first
}

func normName(n string) string { return strings.TrimSuffix(strings.ToLower(n), ".") }
