package upstream

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"causeway.dev/causeway/internal/ir"
)

// Upstream TLS (ir.Cluster.TLS, from BackendTLSPolicy). A cluster with TLS
// gets endpoints of its own, keyed by the cluster's name and a fingerprint
// of its TLS settings: a rotated CA or client certificate is a new key, so
// its endpoints start fresh pools and the old ones are swept with their
// connections. The handshake happens in endpoint.dial, so that HTTP/1.1,
// HTTP/2, health checks and L4 connections all get it; a failed handshake
// is a connect failure (ErrConnect: 503, flag UF).

// tlsClient is the immutable client side of one cluster's upstream TLS.
type tlsClient struct {
	cluster string
	cfg     *tls.Config // nil when err is set
	// err is a configuration that cannot work (an unparseable client
	// key pair): every dial fails with it.
	err error
	log *slog.Logger

	// logged holds the handshake errors already logged, so that a backend
	// with a bad certificate logs once per distinct error, not per request.
	mu     sync.Mutex
	logged map[string]bool
}

// maxLogged bounds the distinct errors remembered per cluster; beyond it
// errors are logged again (a rare, bounded repetition, not a leak).
const maxLogged = 64

// tlsKey is the part of an endpoint's key naming its TLS settings: "" for
// plaintext.
func tlsKey(cluster string, t *ir.UpstreamTLS) string {
	if t == nil {
		return ""
	}
	h := sha256.New()
	for _, b := range [][]byte{[]byte(t.SNI), t.CACertPEM, t.ClientCertPEM, t.ClientKeyPEM} {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	fmt.Fprintf(h, "%t:%q", t.SystemCAs, t.SubjectAltNames)
	return cluster + "\x00" + hex.EncodeToString(h.Sum(nil)[:12])
}

// newTLSClient builds the client configuration of a cluster speaking proto.
// Roots are CACertPEM; with none, the system pool when SystemCAs is set,
// else an empty pool that trusts nothing (a policy whose CA references are
// all invalid must fail its connections, as Gateway API requires).
// SubjectAltNames, when given, replace the check of SNI against the
// certificate. ALPN offers exactly the protocol the cluster speaks.
func newTLSClient(cluster string, t *ir.UpstreamTLS, proto ir.UpstreamProtocol, log *slog.Logger) *tlsClient {
	tc := &tlsClient{cluster: cluster, log: log}
	cfg := &tls.Config{ServerName: t.SNI, MinVersion: tls.VersionTLS12}
	if proto == ir.UpstreamH2C {
		cfg.NextProtos = []string{"h2"}
	} else {
		cfg.NextProtos = []string{"http/1.1"}
	}
	switch {
	case len(t.CACertPEM) > 0:
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(t.CACertPEM) {
			tc.err = errors.New("no usable CA certificate")
			return tc
		}
	case t.SystemCAs:
		// nil RootCAs: crypto/tls uses the system pool.
	default:
		cfg.RootCAs = x509.NewCertPool()
	}
	if len(t.ClientCertPEM) > 0 || len(t.ClientKeyPEM) > 0 {
		pair, err := tls.X509KeyPair(t.ClientCertPEM, t.ClientKeyPEM)
		if err != nil {
			tc.err = fmt.Errorf("client certificate: %w", err)
			return tc
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if len(t.SubjectAltNames) > 0 {
		// The chain is verified here rather than by crypto/tls, which
		// would also insist on ServerName.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = verifySANs(cfg.RootCAs, slices.Clone(t.SubjectAltNames))
	}
	tc.cfg = cfg
	return tc
}

// verifySANs verifies the peer's chain against roots (nil: the system
// pool) and requires one of sans among its DNS names (wildcards in the
// certificate honoured) or URIs. A SAN containing "://" is a URI.
func verifySANs(roots *x509.CertPool, sans []string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the server sent no certificate")
		}
		leaf := cs.PeerCertificates[0]
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
			return err
		}
		for _, want := range sans {
			if isURI(want) {
				for _, u := range leaf.URIs {
					if u.String() == want {
						return nil
					}
				}
				continue
			}
			if slices.Contains(leaf.DNSNames, want) || leaf.VerifyHostname(want) == nil {
				return nil
			}
		}
		var have []string
		have = append(have, leaf.DNSNames...)
		for _, u := range leaf.URIs {
			have = append(have, u.String())
		}
		return fmt.Errorf("certificate subject alternative names %q match none of %q", have, sans)
	}
}

func isURI(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == ':' {
			return s[i+1] == '/' && s[i+2] == '/'
		}
	}
	return false
}

// handshake runs the client handshake over nc, bounded by timeout, and
// returns the TLS connection; nc is closed on failure. The error wraps
// ErrConnect and is logged once per distinct message.
func (tc *tlsClient) handshake(ctx context.Context, nc net.Conn, addr string, timeout time.Duration) (net.Conn, error) {
	if tc.err != nil {
		nc.Close()
		tc.logOnce(addr, tc.err)
		return nil, fmt.Errorf("upstream %s: %w: tls: %w", addr, ErrConnect, tc.err)
	}
	conn := tls.Client(nc, tc.cfg)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	err := conn.HandshakeContext(hctx)
	cancel()
	if err != nil {
		nc.Close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("upstream %s: %w: %w", addr, cerr, err)
		}
		tc.logOnce(addr, err)
		return nil, fmt.Errorf("upstream %s: %w: tls handshake: %w", addr, ErrConnect, err)
	}
	return conn, nil
}

// logOnce logs a handshake failure the first time its message is seen.
func (tc *tlsClient) logOnce(addr string, err error) {
	msg := err.Error()
	tc.mu.Lock()
	seen := tc.logged[msg]
	if !seen {
		if tc.logged == nil || len(tc.logged) >= maxLogged {
			tc.logged = make(map[string]bool)
		}
		tc.logged[msg] = true
	}
	tc.mu.Unlock()
	if !seen {
		tc.log.Warn("upstream TLS handshake failed; requests to the endpoint fail with 503 (UF)",
			"cluster", tc.cluster, "endpoint", addr, "sni", tc.serverName(), "error", msg)
	}
}

func (tc *tlsClient) serverName() string {
	if tc.cfg == nil {
		return ""
	}
	return tc.cfg.ServerName
}
