package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/quic-go/quic-go/http3"

	"causeway.dev/causeway/internal/ir"
)

// h3Client returns an HTTP/3 client (quic-go's) trusting pool.
func h3Client(t *testing.T, pool *x509.CertPool) *http.Client {
	t.Helper()
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr}
}

// echoBackend answers with the method, the body it got and the protocol
// it was spoken to in.
func echoBackend(t *testing.T) string {
	be := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+string(b)+" "+r.Proto)
	})
	return be.URL
}

func h3Config(t *testing.T, backendURL string, h3 bool) (*ir.Config, *x509.CertPool) {
	certPEM, keyPEM := selfSigned(t, "localhost")
	cfg := tlsConfig(backendURL, &ir.Certificate{CertPEM: certPEM, KeyPEM: keyPEM})
	if h3 {
		cfg.Listeners[0].Settings = &ir.ListenerSettings{HTTP3: true}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return cfg, pool
}

func TestHTTP3(t *testing.T) {
	cfg, pool := h3Config(t, echoBackend(t), true)
	e := newEnv(t, Options{})
	e.apply(cfg)
	url := e.url("tls")
	port := e.p.Addr("tls").(*net.TCPAddr).Port
	c := h3Client(t, pool)

	resp, err := c.Get(url + "/get")
	if err != nil {
		t.Fatalf("HTTP/3 GET: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 3 || string(body) != "GET  HTTP/1.1" {
		t.Fatalf("GET: %d %s %q", resp.StatusCode, resp.Proto, body)
	}
	if v := resp.Header.Get("Alt-Svc"); v != "" {
		t.Errorf("HTTP/3 response advertises itself: Alt-Svc %q", v)
	}

	big := strings.Repeat("q", 256<<10)
	resp, err = c.Post(url+"/post", "text/plain", strings.NewReader(big))
	if err != nil {
		t.Fatalf("HTTP/3 POST: %v", err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 3 || string(body) != "POST "+big+" HTTP/1.1" {
		t.Fatalf("POST: %d %s, %d bytes back", resp.StatusCode, resp.Proto, len(body))
	}

	// TCP responses of the listener advertise HTTP/3, for HTTP/1.1 and h2.
	want := `h3=":` + strconv.Itoa(port) + `"; ma=86400`
	for _, h2 := range []bool{false, true} {
		var protos http.Protocols
		protos.SetHTTP1(!h2)
		protos.SetHTTP2(h2)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Protocols: &protos}
		code, _, resp := get(t, &http.Client{Transport: tr}, "GET", url+"/", nil)
		tr.CloseIdleConnections()
		if code != 200 || resp.Header.Get("Alt-Svc") != want {
			t.Errorf("h2=%v: %d, Alt-Svc %q, want %q", h2, code, resp.Header.Get("Alt-Svc"), want)
		}
	}

	// A reload keeps the UDP socket (and the client's QUIC connection).
	before := h3Of(e, "tls")
	cfg2, _ := h3Config(t, echoBackend(t), true)
	cfg2.Listeners[0].TLS = cfg.Listeners[0].TLS
	e.apply(cfg2)
	if resp, err = c.Get(url + "/again"); err != nil {
		t.Fatalf("HTTP/3 GET after reload: %v", err)
	}
	resp.Body.Close()
	if after := h3Of(e, "tls"); after == nil || after != before {
		t.Errorf("reload replaced the HTTP/3 server (%p, then %p)", before, after)
	}

	// Switched off: the UDP socket is closed, Alt-Svc is gone.
	cfg3, _ := h3Config(t, echoBackend(t), false)
	cfg3.Listeners[0].TLS = cfg.Listeners[0].TLS
	// Zero settings rather than nil: the same socket key, so the TCP
	// socket is kept and only the UDP one goes.
	cfg3.Listeners[0].Settings = &ir.ListenerSettings{}
	e.apply(cfg3)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	_, _, resp = get(t, &http.Client{Transport: tr}, "GET", url+"/", nil)
	if v := resp.Header.Get("Alt-Svc"); v != "" {
		t.Errorf("HTTP/3 off: Alt-Svc %q", v)
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatalf("UDP port still held after HTTP/3 was switched off: %v", err)
	}
	pc.Close()
}

// TestHTTP3OffByDefault: an HTTPS listener without the setting neither
// binds UDP nor advertises HTTP/3.
func TestHTTP3OffByDefault(t *testing.T) {
	cfg, pool := h3Config(t, echoBackend(t), false)
	e := newEnv(t, Options{})
	e.apply(cfg)
	port := e.p.Addr("tls").(*net.TCPAddr).Port
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	code, _, resp := get(t, &http.Client{Transport: tr}, "GET", e.url("tls")+"/", nil)
	if code != 200 || resp.Header.Get("Alt-Svc") != "" {
		t.Fatalf("%d, Alt-Svc %q", code, resp.Header.Get("Alt-Svc"))
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatalf("UDP port %d is taken without HTTP/3: %v", port, err)
	}
	pc.Close()
}

// TestHTTP3RemovedListener: removing the listener closes its UDP socket.
func TestHTTP3RemovedListener(t *testing.T) {
	cfg, _ := h3Config(t, echoBackend(t), true)
	e := newEnv(t, Options{})
	e.apply(cfg)
	port := e.p.Addr("tls").(*net.TCPAddr).Port
	e.apply(&ir.Config{})
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatalf("UDP port still held after the listener was removed: %v", err)
	}
	pc.Close()
}

// h3Of returns the HTTP/3 server of a listener, nil when none.
func h3Of(e *env, name string) *h3Server {
	e.p.mu.Lock()
	defer e.p.mu.Unlock()
	if ls := e.p.listeners[name]; ls != nil {
		return ls.h3.Load()
	}
	return nil
}
