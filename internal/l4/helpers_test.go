package l4

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
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

// refused reports whether c is closed by the other side without data.
func refused(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 1))
	return n == 0 && err != nil && !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err)
}
