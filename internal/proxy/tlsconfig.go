package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"causeway.dev/causeway/internal/ir"
)

// Server TLS and per-listener settings of HTTP and HTTPS listeners.
//
// TLS: the socket's tls.Config only has GetConfigForClient, which returns
// the *tls.Config compiled from the current IR (certSet.conf), loaded with
// one atomic read. So an Apply changes certificates, client CAs, versions,
// suites and ALPN for the next handshake without rebinding, and
// established connections keep what they negotiated. Session ticket keys
// stay those of the socket's config (rotated by crypto/tls), so sessions
// resume across Applies; a resumed session's client certificate is
// verified again against the current CAs.
//
// Settings (ir.ListenerSettings) configure the socket's server: they are
// part of the listener key, so changing them rebinds the socket (the old
// one drains) rather than mutating a running server.

// tlsVersionIDs maps the IR's version names to crypto/tls values.
var tlsVersionIDs = map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

// suiteIDs maps Go's cipher suite names to their IDs (secure ones only).
var suiteIDs = func() map[string]uint16 {
	m := map[string]uint16{}
	for _, c := range tls.CipherSuites() {
		m[c.Name] = c.ID
	}
	return m
}()

// serverTLSConfig builds the *tls.Config an HTTPS listener hands out for
// every handshake, from the IR and the listener's parsed certificates.
func serverTLSConfig(t *ir.TLS, cs *certSet) (*tls.Config, error) {
	conf := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return cs.Pick(h.ServerName), nil },
	}
	if t.MinVersion != "" {
		v, ok := tlsVersionIDs[t.MinVersion]
		if !ok {
			return nil, fmt.Errorf("min TLS version %q: want 1.2 or 1.3", t.MinVersion)
		}
		conf.MinVersion = v
	}
	if t.MaxVersion != "" {
		v, ok := tlsVersionIDs[t.MaxVersion]
		if !ok {
			return nil, fmt.Errorf("max TLS version %q: want 1.2 or 1.3", t.MaxVersion)
		}
		conf.MaxVersion = v
		if v < conf.MinVersion {
			return nil, fmt.Errorf("max TLS version %s is below min %s", t.MaxVersion, t.MinVersion)
		}
	}
	for _, name := range t.CipherSuites {
		id, ok := suiteIDs[name]
		if !ok {
			return nil, fmt.Errorf("cipher suite %q is unknown or insecure", name)
		}
		conf.CipherSuites = append(conf.CipherSuites, id)
	}
	if len(t.ALPN) > 0 {
		for _, p := range t.ALPN {
			if p != "h2" && p != "http/1.1" {
				return nil, fmt.Errorf("ALPN protocol %q is not served", p)
			}
		}
		conf.NextProtos = append([]string(nil), t.ALPN...)
	}
	if t.SessionTickets != nil && !*t.SessionTickets {
		conf.SessionTicketsDisabled = true
	}
	if cv := t.ClientValidation; cv != nil {
		pool, err := caPool(cv)
		if err != nil {
			return nil, err
		}
		conf.ClientCAs = pool
		if cv.Optional {
			// Asked for, not required, and a certificate that does not
			// verify does not fail the handshake (AllowInsecureFallback):
			// it is verified per connection for X-Forwarded-Client-Cert.
			conf.ClientAuth = tls.RequestClientCert
		} else {
			conf.ClientAuth = tls.RequireAndVerifyClientCert
			conf.VerifyConnection = func(st tls.ConnectionState) error {
				// A resumed session skips verification; its certificate
				// must still chain to the CAs in force now.
				if !st.DidResume || len(st.PeerCertificates) == 0 {
					return nil
				}
				return verifyClient(pool, st.PeerCertificates)
			}
		}
	}
	return conf, nil
}

// caPool parses a client validation's trusted roots.
func caPool(cv *ir.ClientValidation) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cv.CACertPEM) {
		return nil, fmt.Errorf("client CA certificates (%s): no PEM certificate", cv.Origin)
	}
	return pool, nil
}

// verifyClient verifies a client's chain (leaf first) against pool.
func verifyClient(pool *x509.CertPool, chain []*x509.Certificate) error {
	opts := x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if len(chain) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range chain[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	_, err := chain[0].Verify(opts)
	return err
}

// getConfigForClient hands out the current TLS configuration.
func (ls *listener) getConfigForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	cs := ls.certs.Load()
	if cs == nil || cs.conf == nil {
		return nil, errors.New("no certificate")
	}
	return cs.conf, nil
}

// socketTLSConfig is the configuration the socket is wrapped with; every
// handshake takes its settings from getConfigForClient.
func (ls *listener) socketTLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: ls.getConfigForClient}
}

// listenerSettings are the resolved settings of a listener's server, plain
// values so that any HTTP server implementation can take them.
type listenerSettings struct {
	maxConnections    int
	maxHeaderBytes    int
	idleTimeout       time.Duration
	readHeaderTimeout time.Duration
	http2             *http.HTTP2Config // nil: net/http's defaults
}

// settings resolves l.Settings over the proxy's options.
func (p *Proxy) settings(l *ir.Listener) listenerSettings {
	s := listenerSettings{
		maxConnections:    p.opts.MaxConnections,
		maxHeaderBytes:    p.opts.MaxHeaderBytes,
		idleTimeout:       p.opts.IdleTimeout,
		readHeaderTimeout: p.opts.ReadHeaderTimeout,
	}
	st := l.Settings
	if st == nil {
		return s
	}
	if st.MaxConnections > 0 {
		s.maxConnections = st.MaxConnections
	}
	if st.MaxHeaderBytes > 0 {
		s.maxHeaderBytes = st.MaxHeaderBytes
	}
	if st.IdleTimeout > 0 {
		s.idleTimeout = time.Duration(st.IdleTimeout)
	}
	if st.ReadHeaderTimeout > 0 {
		s.readHeaderTimeout = time.Duration(st.ReadHeaderTimeout)
	}
	if h := st.HTTP2; h != nil {
		s.http2 = &http.HTTP2Config{
			MaxConcurrentStreams:          int(h.MaxConcurrentStreams),
			MaxReceiveBufferPerStream:     int(h.InitialStreamWindow),
			MaxReceiveBufferPerConnection: int(h.InitialConnWindow),
		}
	}
	return s
}

// settingsKey is the part of the listener key that the settings make:
// everything but XFCC, which the graph carries.
func settingsKey(st *ir.ListenerSettings) string {
	if st == nil {
		return ""
	}
	k := strconv.Itoa(st.MaxConnections) + "," + strconv.Itoa(st.MaxHeaderBytes) + "," +
		time.Duration(st.IdleTimeout).String() + "," + time.Duration(st.ReadHeaderTimeout).String()
	if h := st.HTTP2; h != nil {
		k += fmt.Sprintf(",h2:%d/%d/%d", h.MaxConcurrentStreams, h.InitialStreamWindow, h.InitialConnWindow)
	}
	return k
}

// checkSettings refuses settings a server cannot take.
func checkSettings(st *ir.ListenerSettings) error {
	if st == nil {
		return nil
	}
	if st.MaxConnections < 0 || st.MaxHeaderBytes < 0 || st.IdleTimeout < 0 || st.ReadHeaderTimeout < 0 {
		return errors.New("negative listener setting")
	}
	if h := st.HTTP2; h != nil && (h.InitialStreamWindow < 0 || h.InitialConnWindow < 0) {
		return errors.New("negative HTTP/2 window")
	}
	switch st.XFCC {
	case "", ir.XFCCSanitize, ir.XFCCSanitizeSet, ir.XFCCForward:
	default:
		return fmt.Errorf("unknown xfcc mode %q", st.XFCC)
	}
	return nil
}
