package l4

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
)

// testDialer dials a fixed address, over TCP or UDP; the lead's
// *upstream.Cluster plays this part in the proxy.
type testDialer struct {
	addr  string
	dials atomic.Int64
}

func (d *testDialer) DialContext(ctx context.Context) (net.Conn, string, error) {
	d.dials.Add(1)
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", d.addr)
	return c, d.addr, err
}

func (d *testDialer) DialPacket(ctx context.Context) (net.Conn, string, error) {
	d.dials.Add(1)
	c, err := (&net.Dialer{}).DialContext(ctx, "udp", d.addr)
	return c, d.addr, err
}

// start serves l on a fresh loopback socket with clusters named by the map
// keys; it returns the server and its address. The server is shut down at
// the end of the test.
func start(t testing.TB, opts Options, l *ir.Listener, clusters map[string]Dialer) (*Server, string) {
	t.Helper()
	tab, err := Compile(l, func(c string) bool { _, ok := clusters[c]; return ok })
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	tab.Resolve(func(c string) Dialer { return clusters[c] })
	s := New(opts)
	s.Swap(tab)
	if l.Protocol == ir.ProtocolUDP {
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = s.ServePacket(pc) }()
		t.Cleanup(func() { shutdown(t, s) })
		return s, pc.LocalAddr().String()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { shutdown(t, s) })
	return s, ln.Addr().String()
}

func shutdown(t testing.TB, s *Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// route is an L4Route to the named clusters, weight 1 each.
func l4route(name string, hosts []string, clusters ...string) *ir.L4Route {
	r := &ir.L4Route{Name: name, Hostnames: hosts}
	for _, c := range clusters {
		r.Backends = append(r.Backends, &ir.Backend{Cluster: c, Weight: 1, Name: c})
	}
	return r
}

// serveTCP runs handle for every connection to a fresh loopback listener,
// until the test ends.
func serveTCP(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// serveTLS is serveTCP with TLS on top, the certificate given.
func serveTLS(t testing.TB, cert tls.Certificate, handle func(net.Conn)) string {
	t.Helper()
	return serveTCP(t, func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		if tc.Handshake() != nil {
			return
		}
		handle(tc)
	})
}

// sayName writes name and a newline, then echoes lines back.
func sayName(name string) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := io.WriteString(c, name+"\n"); err != nil {
			return
		}
		_, _ = io.Copy(c, c)
	}
}

// readLine reads one line with a deadline.
func readLine(t testing.TB, c net.Conn) (string, error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return line[:len(line)-1], nil
}

// ca is a test certificate authority.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t testing.TB, name string) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &ca{cert: cert, key: key, pool: pool}
}

// leaf issues a server certificate for names; it returns the tls pair and
// the PEM chain and key.
func (c *ca) leaf(t testing.TB, names ...string) (tls.Certificate, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, certPEM, keyPEM
}

// refused reports whether c is closed by the other side without data.
func refused(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	return n == 0 && err != nil && !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err)
}
