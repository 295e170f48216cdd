package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/test/testcert"
)

// httpsEnv applies one HTTPS listener "tls" with the given TLS extras and
// settings, and returns the env and a pool trusting its certificate.
func httpsEnv(t *testing.T, extra func(*ir.TLS), st *ir.ListenerSettings) (*env, *x509.CertPool) {
	be := textBackend(t, "ok")
	certPEM, keyPEM := selfSigned(t, "localhost")
	cfg := tlsConfig(be.URL, &ir.Certificate{CertPEM: certPEM, KeyPEM: keyPEM})
	if extra != nil {
		extra(cfg.Listeners[0].TLS)
	}
	cfg.Listeners[0].Settings = st
	e := newEnv(t, Options{})
	e.apply(cfg)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return e, pool
}

func handshake(addr string, conf *tls.Config) (tls.ConnectionState, error) {
	c, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.ConnectionState(), nil
}

func TestTLSMinVersion(t *testing.T) {
	e, pool := httpsEnv(t, func(t *ir.TLS) { t.MinVersion = "1.3" }, nil)
	addr := e.p.Addr("tls").String()
	if _, err := handshake(addr, &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("a TLS 1.2 client was accepted with minVersion 1.3")
	}
	st, err := handshake(addr, &tls.Config{RootCAs: pool})
	if err != nil || st.Version != tls.VersionTLS13 {
		t.Errorf("TLS 1.3 client: %v, version %x", err, st.Version)
	}

	e, pool = httpsEnv(t, func(t *ir.TLS) {
		t.MaxVersion = "1.2"
		t.CipherSuites = []string{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}
	}, nil)
	st, err = handshake(e.p.Addr("tls").String(), &tls.Config{RootCAs: pool})
	if err != nil || st.Version != tls.VersionTLS12 || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 {
		t.Errorf("maxVersion 1.2 with one suite: %v, version %x suite %s", err, st.Version, tls.CipherSuiteName(st.CipherSuite))
	}
	_, err = handshake(e.p.Addr("tls").String(), &tls.Config{RootCAs: pool, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}})
	if err == nil {
		t.Error("a suite outside cipherSuites was negotiated")
	}
}

func TestALPNRestriction(t *testing.T) {
	e, pool := httpsEnv(t, func(t *ir.TLS) { t.ALPN = []string{"http/1.1"} }, nil)
	addr := e.p.Addr("tls").String()
	if _, err := handshake(addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}}); err == nil {
		t.Error("an h2-only client was accepted with ALPN http/1.1")
	}
	st, err := handshake(addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil || st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("h2,http/1.1 client: %v, negotiated %q", err, st.NegotiatedProtocol)
	}
	// An HTTP/2-capable client falls back to HTTP/1.1.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	code, _, resp := get(t, &http.Client{Transport: tr}, "GET", e.url("tls")+"/", nil)
	if code != 200 || resp.ProtoMajor != 1 {
		t.Errorf("got %d over %s", code, resp.Proto)
	}
}

// resumes makes two connections sharing a session cache and tells
// whether the second resumed. A request is made on each so that TLS 1.3
// tickets arrive.
func resumes(t *testing.T, url string, conf *tls.Config) (bool, error) {
	t.Helper()
	conf.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	var did bool
	for i := 0; i < 2; i++ {
		tr := &http.Transport{TLSClientConfig: conf, DisableKeepAlives: true}
		resp, err := (&http.Client{Transport: tr}).Get(url)
		if err != nil {
			return false, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		did = resp.TLS.DidResume
	}
	return did, nil
}

func TestSessionTickets(t *testing.T) {
	e, pool := httpsEnv(t, nil, nil)
	if did, err := resumes(t, e.url("tls")+"/", &tls.Config{RootCAs: pool}); err != nil || !did {
		t.Errorf("default: resumed %v (%v), want a resumption", did, err)
	}
	e, pool = httpsEnv(t, func(t *ir.TLS) { t.SessionTickets = new(bool) }, nil)
	if did, err := resumes(t, e.url("tls")+"/", &tls.Config{RootCAs: pool}); err != nil || did {
		t.Errorf("sessionTickets false: resumed %v (%v), want a full handshake", did, err)
	}
}

// TestResumptionReverified: a session resumed after the client CAs
// changed is refused if its certificate no longer verifies.
func TestResumptionReverified(t *testing.T) {
	ca, other := testcert.NewCA(t, "ca"), testcert.NewCA(t, "other")
	m := newMTLS(t, &ir.ClientValidation{CACertPEM: ca.CertPEM, Origin: "test"}, nil)
	conf := &tls.Config{RootCAs: m.serverPool, Certificates: []tls.Certificate{issueClient(t, ca, "dave")}}
	if did, err := resumes(t, m.url("tls")+"/", conf); err != nil || !did {
		t.Fatalf("before rotation: resumed %v (%v)", did, err)
	}
	m.cfg.Listeners[0].TLS.ClientValidation = &ir.ClientValidation{CACertPEM: other.CertPEM, Origin: "test"}
	m.apply(m.cfg)
	tr := &http.Transport{TLSClientConfig: conf, DisableKeepAlives: true}
	if resp, err := (&http.Client{Transport: tr}).Get(m.url("tls") + "/"); err == nil {
		resp.Body.Close()
		t.Errorf("resumed with a certificate of a CA no longer trusted (resumed %v)", resp.TLS.DidResume)
	}
}

func TestListenerMaxConnections(t *testing.T) {
	be := textBackend(t, "ok")
	e := newEnv(t, Options{})
	cfg := config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL))
	cfg.Listeners[0].Settings = &ir.ListenerSettings{MaxConnections: 1}
	e.apply(cfg)
	addr := e.p.Addr("main").String()
	conn := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		return c, bufio.NewReader(c)
	}
	status := func(c net.Conn, br *bufio.Reader, wait time.Duration) (string, error) {
		c.SetReadDeadline(time.Now().Add(wait))
		return br.ReadString('\n')
	}
	first, br1 := conn()
	if line, err := status(first, br1, 10*time.Second); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("first connection: %q %v", line, err)
	}
	// The kernel completes the second connection; the proxy must not
	// serve it while the first is open.
	second, br2 := conn()
	if line, err := status(second, br2, 300*time.Millisecond); err == nil {
		t.Fatalf("second connection served beyond maxConnections 1: %q", line)
	}
	first.Close()
	if line, err := status(second, br2, 10*time.Second); err != nil || !strings.Contains(line, "200") {
		t.Errorf("a slot freed, yet the waiting connection got %q %v", line, err)
	}
}

func TestMaxHeaderBytesAndRebind(t *testing.T) {
	be := textBackend(t, "ok")
	e := newEnv(t, Options{})
	cfg := config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL))
	e.apply(cfg)
	big := map[string]string{"X-Big": strings.Repeat("a", 8<<10)}
	if code, _, _ := get(t, client(t), "GET", e.url("main")+"/", big); code != 200 {
		t.Fatalf("default limit: %d", code)
	}
	cfg2 := config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL))
	cfg2.Listeners[0].Settings = &ir.ListenerSettings{MaxHeaderBytes: 2048}
	e.apply(cfg2)
	if code, _, _ := get(t, client(t), "GET", e.url("main")+"/", big); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("maxHeaderBytes 2048: %d, want 431", code)
	}
	if code, _, _ := get(t, client(t), "GET", e.url("main")+"/", nil); code != 200 {
		t.Errorf("small request: %d", code)
	}
}

// TestHTTP2Settings reads the server's SETTINGS frame and connection
// WINDOW_UPDATE as a client sees them.
func TestHTTP2Settings(t *testing.T) {
	e, pool := httpsEnv(t, nil, &ir.ListenerSettings{HTTP2: &ir.HTTP2Settings{
		MaxConcurrentStreams: 7, InitialStreamWindow: 100000, InitialConnWindow: 2 << 20,
	}})
	c, err := tls.Dial("tcp", e.p.Addr("tls").String(), &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	got := map[http2.SettingID]uint32{}
	var connWindow uint32
	for connWindow == 0 || len(got) == 0 {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				f.ForeachSetting(func(s http2.Setting) error { got[s.ID] = s.Val; return nil })
			}
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				connWindow = 65535 + f.Increment
			}
		}
	}
	if got[http2.SettingMaxConcurrentStreams] != 7 || got[http2.SettingInitialWindowSize] != 100000 {
		t.Errorf("SETTINGS %v, want max streams 7 and initial window 100000", got)
	}
	if connWindow != 2<<20 {
		t.Errorf("connection window %d, want %d", connWindow, 2<<20)
	}
}

// TestCertRotationUnderLoad replaces the server certificate while clients
// send requests without pause, on kept-alive and on fresh connections: no
// request fails, established connections stay, and handshakes after the
// Apply see the new certificate.
func TestCertRotationUnderLoad(t *testing.T) {
	be := textBackend(t, "ok")
	oldCert, oldKey := selfSigned(t, "localhost")
	newCert, newKey := selfSigned(t, "localhost")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(oldCert)
	pool.AppendCertsFromPEM(newCert)
	e := newEnv(t, Options{})
	e.apply(tlsConfig(be.URL, &ir.Certificate{CertPEM: oldCert, KeyPEM: oldKey}))
	url := e.url("tls") + "/"

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: i%2 == 1, ForceAttemptHTTP2: i == 2}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			for ctx.Err() == nil {
				resp, err := c.Get(url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	waitFor := func(n int64) {
		for ok.Load() < n && failed.Load() == 0 {
			time.Sleep(time.Millisecond) // polling progress, not ordering
		}
	}
	waitFor(200)
	e.apply(tlsConfig(be.URL, &ir.Certificate{CertPEM: newCert, KeyPEM: newKey}))
	st, err := handshake(e.p.Addr("tls").String(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(newCert)
	if string(st.PeerCertificates[0].Raw) != string(blk.Bytes) {
		t.Error("a handshake after the Apply did not see the new certificate")
	}
	waitFor(ok.Load() + 200)
	cancel()
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d requests failed during rotation, first: %v", n, firstErr.Load())
	}
}
