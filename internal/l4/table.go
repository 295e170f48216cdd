package l4

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"causeway.dev/causeway/internal/certs"
	"causeway.dev/causeway/internal/ir"
)

// Default idle timeouts, used when an ir.L4Route leaves IdleTimeout zero.
const (
	DefaultTCPIdleTimeout = time.Hour
	DefaultUDPIdleTimeout = 60 * time.Second
)

// Table is the compiled, immutable configuration of one L4 listener: its
// routes (by SNI for TLS) and, when some route terminates TLS, the server
// configuration with its certificates. A connection loads the Table once
// when it is accepted.
type Table struct {
	proto ir.Protocol
	// tls serves the routes that terminate; nil when none does. One
	// config per Table, so that session tickets resume across connections.
	tls *tls.Config

	exact map[string]*route // lower-case SNI
	wild  map[string]*route // "*.example.com" stored as ".example.com"
	any   *route            // first route without hostnames; TCP and UDP: the first route
	all   []*route
}

// route is one ir.L4Route with its backends' cumulative weights.
type route struct {
	name      string
	idle      time.Duration
	terminate bool // TLS: handshake here, forward plaintext
	backends  []backend
	cum       []uint32
	total     uint32
}

// backend is one weighted destination; d is nil when the cluster is
// unknown ("" in the IR, or not resolved), and its share is refused.
type backend struct {
	name    string
	cluster string
	d       Dialer
}

// Compile builds the Table of l, which must have protocol TLS, TCP or UDP.
// known tells whether a cluster name exists in the configuration; backends
// are bound to their dialers later by Resolve, once the clusters exist.
// Compile does no I/O besides parsing certificates.
func Compile(l *ir.Listener, known func(cluster string) bool) (*Table, error) {
	t := &Table{proto: l.Protocol, exact: map[string]*route{}, wild: map[string]*route{}}
	// legacy: an IR from before L4Route.Terminate, where TLS alone meant
	// that every route terminates.
	legacy, terminates := l.Protocol == ir.ProtocolTLS && l.TLS != nil, false
	for _, lr := range l.L4Routes {
		if lr != nil && lr.Terminate {
			legacy, terminates = false, true
		}
	}
	switch l.Protocol {
	case ir.ProtocolTLS:
		if legacy || terminates {
			cs, err := compileCerts(l.TLS)
			if err != nil {
				return nil, err
			}
			t.tls = &tls.Config{
				MinVersion:     tls.VersionTLS12,
				GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return cs.Pick(h.ServerName), nil },
			}
		}
	case ir.ProtocolTCP, ir.ProtocolUDP:
		if terminates {
			return nil, fmt.Errorf("TLS termination on a %s listener", l.Protocol)
		}
	default:
		return nil, fmt.Errorf("protocol %q is not an L4 protocol", l.Protocol)
	}
	def := DefaultTCPIdleTimeout
	if l.Protocol == ir.ProtocolUDP {
		def = DefaultUDPIdleTimeout
	}
	for _, lr := range l.L4Routes {
		if lr == nil {
			continue
		}
		r := &route{name: lr.Name, idle: time.Duration(lr.IdleTimeout), terminate: lr.Terminate || legacy}
		if r.idle < 0 {
			return nil, fmt.Errorf("route %s: negative idle timeout", lr.Name)
		}
		if r.idle == 0 {
			r.idle = def
		}
		for _, b := range lr.Backends {
			if b == nil || b.Weight == 0 {
				continue
			}
			if b.Weight < 0 {
				return nil, fmt.Errorf("route %s: backend %s: negative weight", lr.Name, b.Name)
			}
			if b.Cluster != "" && !known(b.Cluster) {
				return nil, fmt.Errorf("route %s: backend %s: unknown cluster %q", lr.Name, b.Name, b.Cluster)
			}
			if uint64(r.total)+uint64(b.Weight) > math.MaxUint32 {
				return nil, fmt.Errorf("route %s: backend weights overflow", lr.Name)
			}
			r.total += uint32(b.Weight)
			r.cum = append(r.cum, r.total)
			r.backends = append(r.backends, backend{name: b.Name, cluster: b.Cluster})
		}
		t.all = append(t.all, r)
		if l.Protocol != ir.ProtocolTLS {
			if t.any == nil {
				t.any = r
			}
			continue
		}
		if len(lr.Hostnames) == 0 && t.any == nil {
			t.any = r
		}
		for _, h := range lr.Hostnames {
			h = normName(h)
			m, key := t.exact, h
			if strings.HasPrefix(h, "*.") {
				m, key = t.wild, h[1:]
			}
			if _, dup := m[key]; !dup {
				m[key] = r
			}
		}
	}
	return t, nil
}

// Resolve binds every backend to the dialer of its cluster; dial returns
// nil for a cluster it does not know, whose share is then refused. For UDP
// listeners the dialer must also implement PacketDialer. Resolve must be
// called before the Table is handed to a Server.
func (t *Table) Resolve(dial func(cluster string) Dialer) {
	for _, r := range t.all {
		for i := range r.backends {
			if b := &r.backends[i]; b.cluster != "" {
				b.d = dial(b.cluster)
			}
		}
	}
}

// normName lower-cases a host name and drops a trailing dot.
func normName(n string) string { return strings.TrimSuffix(strings.ToLower(n), ".") }

// match chooses the route of a server name: exact, then the longest
// wildcard (which stands for one or more labels, as in Gateway API), then
// a route without hostnames. TCP and UDP tables ignore the name.
func (t *Table) match(sni string) *route {
	if t.proto != ir.ProtocolTLS || sni == "" {
		return t.any
	}
	name := normName(sni)
	if r := t.exact[name]; r != nil {
		return r
	}
	for i := 1; i < len(name); i++ {
		if name[i] == '.' {
			if r := t.wild[name[i:]]; r != nil {
				return r
			}
		}
	}
	return t.any
}

// pick chooses a backend by weight; nil when the route has none or the
// chosen one is invalid.
func (r *route) pick() *backend {
	switch len(r.backends) {
	case 0:
		return nil
	case 1:
		return &r.backends[0]
	}
	n := rand.Uint32N(r.total)
	for i, c := range r.cum {
		if n < c {
			return &r.backends[i]
		}
	}
	return nil
}

// compileCerts parses the certificates of a TLS listener with routes that
// terminate.
func compileCerts(t *ir.TLS) (*certs.Set, error) {
	errNone := errors.New("TLS listener with terminating routes but no certificates")
	if t == nil {
		return nil, errNone
	}
	s, err := certs.Compile(t.Certificates)
	if errors.Is(err, certs.ErrNone) {
		return nil, errNone
	}
	return s, err
}
