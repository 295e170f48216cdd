package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"causeway.dev/causeway/internal/ir"
)

// xfccHeader is Envoy's header for the client certificate of a mutual TLS
// connection. Whatever a client sends under this name is removed on every
// listener (forwardHeaders), so a backend can trust what it receives.
const xfccHeader = "X-Forwarded-Client-Cert"

// clientCert sets X-Forwarded-Client-Cert on a listener that verifies
// client certificates; nil on the others and in mode Sanitize.
type clientCert struct {
	forward bool           // mode Forward: Cert and Chain too
	pool    *x509.CertPool // to verify certificates the handshake did not (AllowInsecureFallback)
	// last caches the value for one leaf certificate: every request of a
	// connection carries the same *x509.Certificate, so a connection
	// computes it once. A single entry, swapped without a lock.
	last atomic.Pointer[xfccEntry]
}

type xfccEntry struct {
	leaf  *x509.Certificate
	value string // "" when the certificate did not verify
}

// compileClientCert returns what l does for X-Forwarded-Client-Cert.
func compileClientCert(l *ir.Listener) (*clientCert, error) {
	mode := ir.XFCCSanitizeSet
	if l.Settings != nil && l.Settings.XFCC != "" {
		mode = l.Settings.XFCC
	}
	if mode == ir.XFCCSanitize || l.TLS == nil || l.TLS.ClientValidation == nil {
		return nil, nil
	}
	pool, err := caPool(l.TLS.ClientValidation)
	if err != nil {
		return nil, err
	}
	return &clientCert{forward: mode == ir.XFCCForward, pool: pool}, nil
}

// setXFCC removes a client-sent X-Forwarded-Client-Cert and, when c
// says so and the connection presented a verified certificate, sets the
// proxy's own.
func (c *clientCert) setXFCC(h http.Header, st *tls.ConnectionState) {
	delete(h, xfccHeader)
	if c == nil || st == nil || len(st.PeerCertificates) == 0 {
		return
	}
	if v := c.value(st); v != "" {
		h[xfccHeader] = []string{v}
	}
}

// value is the header value for the connection's certificate, "" if it
// does not verify.
func (c *clientCert) value(st *tls.ConnectionState) string {
	leaf := st.PeerCertificates[0]
	if e := c.last.Load(); e != nil && e.leaf == leaf {
		return e.value
	}
	v := ""
	if len(st.VerifiedChains) > 0 || verifyClient(c.pool, st.PeerCertificates) == nil {
		v = formatXFCC(st.PeerCertificates, c.forward)
	}
	c.last.Store(&xfccEntry{leaf: leaf, value: v})
	return v
}

// formatXFCC renders one element of Envoy's X-Forwarded-Client-Cert:
// semicolon-separated key=value pairs Hash (SHA-256 of the leaf's DER, hex),
// with withCert Cert and Chain (URL-encoded PEM of the leaf and of the
// whole chain), Subject (RFC 2253), then one URI and one DNS pair per
// subject alternative name. Values with special characters are quoted.
func formatXFCC(chain []*x509.Certificate, withCert bool) string {
	leaf := chain[0]
	var b strings.Builder
	sum := sha256.Sum256(leaf.Raw)
	b.WriteString("Hash=")
	b.WriteString(hex.EncodeToString(sum[:]))
	if withCert {
		b.WriteString(`;Cert="`)
		b.WriteString(pemEscape(leaf))
		b.WriteString(`";Chain="`)
		for _, c := range chain {
			b.WriteString(pemEscape(c))
		}
		b.WriteByte('"')
	}
	b.WriteString(`;Subject="`)
	b.WriteString(strings.ReplaceAll(leaf.Subject.String(), `"`, `\"`))
	b.WriteByte('"')
	for _, u := range leaf.URIs {
		writePair(&b, "URI", u.String())
	}
	for _, d := range leaf.DNSNames {
		writePair(&b, "DNS", d)
	}
	return b.String()
}

// writePair appends ";key=value", quoting a value that holds a separator.
func writePair(b *strings.Builder, key, v string) {
	b.WriteByte(';')
	b.WriteString(key)
	b.WriteByte('=')
	if strings.ContainsAny(v, `,;="`) {
		b.WriteByte('"')
		b.WriteString(strings.ReplaceAll(v, `"`, `\"`))
		b.WriteByte('"')
		return
	}
	b.WriteString(v)
}

// pemEscape is a certificate's PEM, URL-encoded (spaces as %20).
func pemEscape(c *x509.Certificate) string {
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	return strings.ReplaceAll(url.QueryEscape(string(p)), "+", "%20")
}
