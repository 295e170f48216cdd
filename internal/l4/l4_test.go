package l4

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/test/testcert"
)

// TestPassthroughBackendCertificate: the client completes its handshake
// with the backend itself, whose certificate (and only its CA) it verifies.
func TestPassthroughBackendCertificate(t *testing.T) {
	backendCA := testcert.NewCA(t, "backend CA")
	pair := backendCA.Server(t, "db.example.com", "db.example.com").TLS
	backend := serveTLS(t, pair, sayName("backend"))
	l := &ir.Listener{Name: "tls", Protocol: ir.ProtocolTLS, L4Routes: []*ir.L4Route{
		l4route("tlsroute/default/db/rule/0", []string{"db.example.com"}, "db"),
	}}
	_, addr := start(t, Options{}, l, map[string]Dialer{"db": &testDialer{addr: backend}})

	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "db.example.com", RootCAs: backendCA.Pool})
	if err != nil {
		t.Fatalf("handshake through the gateway: %v", err)
	}
	defer c.Close()
	st := c.ConnectionState()
	if len(st.VerifiedChains) != 1 || len(st.VerifiedChains[0]) != 2 {
		t.Fatalf("verified chains = %d, want one chain leaf+CA", len(st.VerifiedChains))
	}
	if !bytes.Equal(st.PeerCertificates[0].Raw, pair.Certificate[0]) {
		t.Fatal("the client did not get the backend's own certificate")
	}
	if got := st.VerifiedChains[0][1].Subject.CommonName; got != "backend CA" {
		t.Fatalf("chain root = %q", got)
	}
	if line, err := readLine(t, c); err != nil || line != "backend" {
		t.Fatalf("read %q, %v", line, err)
	}
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := readLine(t, c); err != nil || line != "ping" {
		t.Fatalf("echo %q, %v", line, err)
	}
}

// TestPassthroughSNI: exact names first, then the longest wildcard, then a
// route without hostnames; with no such route an unknown name is refused.
func TestPassthroughSNI(t *testing.T) {
	authority := testcert.NewCA(t, "CA")
	names := []string{"a.example.com", "*.example.com", "*.b.example.com", "other.test", "x.y.example.com"}
	backends := map[string]Dialer{}
	for _, name := range []string{"exact", "wild", "longwild", "default"} {
		pair := authority.Server(t, names[0], names...).TLS
		backends[name] = &testDialer{addr: serveTLS(t, pair, sayName(name))}
	}
	routes := []*ir.L4Route{
		l4route("exact", []string{"a.example.com"}, "exact"),
		l4route("longwild", []string{"*.b.example.com"}, "longwild"),
		l4route("wild", []string{"*.example.com"}, "wild"),
	}
	withDefault := append(routes, l4route("default", nil, "default"))
	_, addr := start(t, Options{}, &ir.Listener{Name: "tls", Protocol: ir.ProtocolTLS, L4Routes: withDefault}, backends)
	_, strict := start(t, Options{}, &ir.Listener{Name: "tls", Protocol: ir.ProtocolTLS, L4Routes: routes}, backends)

	dial := func(addr, sni string) (string, error) {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, RootCAs: authority.Pool})
		if err != nil {
			return "", err
		}
		defer c.Close()
		return readLine(t, c)
	}
	for sni, want := range map[string]string{
		"a.example.com":   "exact",
		"A.Example.COM":   "exact",
		"x.example.com":   "wild",
		"x.y.example.com": "wild",
		"c.b.example.com": "longwild",
		"other.test":      "default",
	} {
		if got, err := dial(addr, sni); err != nil || got != want {
			t.Errorf("SNI %s: served by %q (%v), want %s", sni, got, err, want)
		}
	}
	if got, err := dial(strict, "x.example.com"); err != nil || got != "wild" {
		t.Errorf("strict listener, x.example.com: %q, %v", got, err)
	}
	if _, err := dial(strict, "other.test"); err == nil {
		t.Error("an SNI matching no route was not refused")
	}
	// Not TLS at all: refused too.
	c, err := net.Dial("tcp", strict)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if !refused(c) {
		t.Error("plain HTTP on a TLS passthrough listener was not refused")
	}
}

// TestTerminate: the gateway's certificate is chosen by SNI, and the
// backend receives plaintext.
func TestTerminate(t *testing.T) {
	authority := testcert.NewCA(t, "gateway CA")
	certA := authority.Server(t, "a.example.com", "a.example.com")
	certW := authority.Server(t, "*.example.com", "*.example.com")
	backend := serveTCP(t, func(c net.Conn) {
		line, err := readLine(t, c)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "plain:%s\n", line)
	})
	l := &ir.Listener{Name: "tls", Protocol: ir.ProtocolTLS,
		TLS: &ir.TLS{Certificates: []*ir.Certificate{
			{SNI: []string{"a.example.com"}, CertPEM: certA.CertPEM, KeyPEM: certA.KeyPEM},
			{SNI: []string{"*.example.com"}, CertPEM: certW.CertPEM, KeyPEM: certW.KeyPEM},
		}},
		L4Routes: []*ir.L4Route{l4route("r", []string{"*.example.com"}, "plain")},
	}
	_, addr := start(t, Options{}, l, map[string]Dialer{"plain": &testDialer{addr: backend}})
	for sni, wantName := range map[string]string{"a.example.com": "a.example.com", "b.example.com": "*.example.com"} {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, RootCAs: authority.Pool})
		if err != nil {
			t.Fatalf("%s: %v", sni, err)
		}
		if got := c.ConnectionState().PeerCertificates[0].DNSNames[0]; got != wantName {
			t.Errorf("%s: certificate for %s, want %s", sni, got, wantName)
		}
		_, _ = io.WriteString(c, "hello\n")
		if line, err := readLine(t, c); err != nil || line != "plain:hello" {
			t.Errorf("%s: got %q, %v", sni, line, err)
		}
		c.Close()
	}
}

// TestTCPHalfClose: the client closes its write half; the backend reads to
// EOF and still sends its answer.
func TestTCPHalfClose(t *testing.T) {
	backend := serveTCP(t, func(c net.Conn) {
		n, err := io.Copy(io.Discard, c)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "got %d bytes", n)
	})
	l := &ir.Listener{Name: "tcp", Protocol: ir.ProtocolTCP, L4Routes: []*ir.L4Route{l4route("r", nil, "b")}}
	_, addr := start(t, Options{}, l, map[string]Dialer{"b": &testDialer{addr: backend}})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := bytes.Repeat([]byte("x"), 1<<20)
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("got %d bytes", len(payload)); string(got) != want {
		t.Fatalf("answer %q, want %q", got, want)
	}
}

// TestTCPWeights: connections are shared by weight, and a share with an
// invalid cluster is refused.
func TestTCPWeights(t *testing.T) {
	a := &testDialer{addr: serveTCP(t, sayName("a"))}
	b := &testDialer{addr: serveTCP(t, sayName("b"))}
	r := &ir.L4Route{Name: "r", Backends: []*ir.Backend{
		{Cluster: "a", Weight: 3, Name: "a"},
		{Cluster: "b", Weight: 1, Name: "b"},
		{Cluster: "", Weight: 1, Name: "invalid"},
	}}
	_, addr := start(t, Options{}, &ir.Listener{Name: "tcp", Protocol: ir.ProtocolTCP, L4Routes: []*ir.L4Route{r}}, map[string]Dialer{"a": a, "b": b})
	counts := map[string]int{}
	const n = 500
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		line, err := readLine(t, c)
		if err != nil {
			line = "refused"
		}
		counts[line]++
		c.Close()
	}
	// Expected 300/100/100; bounds are ~6 standard deviations wide.
	for name, want := range map[string]int{"a": 300, "b": 100, "refused": 100} {
		if got := counts[name]; got < want-65 || got > want+65 {
			t.Errorf("%s: %d of %d connections, want about %d (%v)", name, got, n, want, counts)
		}
	}
}

// TestTCPIdleTimeout: a connection silent both ways is closed after its
// route's idle timeout (between one and two of them).
func TestTCPIdleTimeout(t *testing.T) {
	backend := serveTCP(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	r := l4route("r", nil, "b")
	r.IdleTimeout = ir.Duration(300 * time.Millisecond)
	srv, addr := start(t, Options{}, &ir.Listener{Name: "tcp", Protocol: ir.ProtocolTCP, L4Routes: []*ir.L4Route{r}}, map[string]Dialer{"b": &testDialer{addr: backend}})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Activity for longer than the timeout keeps it open.
	var began time.Time
	for i := range 6 {
		if i > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		_, _ = io.WriteString(c, "ping\n")
		if line, err := readLine(t, c); err != nil || line != "ping" {
			t.Fatalf("echo: %q, %v", line, err)
		}
		began = time.Now()
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read %d, %v; want EOF from the idle timeout", n, err)
	}
	if d := time.Since(began); d < 250*time.Millisecond { // less the last reply's trip
		t.Fatalf("closed after %v, before the idle timeout", d)
	}
	waitFor(t, func() bool { return srv.Conns() == 0 })
}

// TestShutdown: Shutdown waits for connections, and cuts them when its
// context ends.
func TestShutdown(t *testing.T) {
	backend := serveTCP(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
	l := &ir.Listener{Name: "tcp", Protocol: ir.ProtocolTCP, L4Routes: []*ir.L4Route{l4route("r", nil, "b")}}
	tab, _ := Compile(l, func(string) bool { return true })
	tab.Resolve(func(string) Dialer { return &testDialer{addr: backend} })
	s := New(Options{})
	s.Swap(tab)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "x\n")
	if _, err := readLine(t, c); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown with a connection open: %v, want deadline exceeded", err)
	}
	if err := <-served; err != ErrServerClosed {
		t.Fatalf("Serve returned %v", err)
	}
	if !refused(c) {
		t.Fatal("connection still open after Shutdown")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("still accepting after Shutdown")
	}
}

// TestMaxConnections: beyond the bound, a connection waits until a slot
// frees.
func TestMaxConnections(t *testing.T) {
	backend := serveTCP(t, sayName("b"))
	l := &ir.Listener{Name: "tcp", Protocol: ir.ProtocolTCP, L4Routes: []*ir.L4Route{l4route("r", nil, "b")}}
	_, addr := start(t, Options{MaxConnections: 1}, l, map[string]Dialer{"b": &testDialer{addr: backend}})
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if line, err := readLine(t, first); err != nil || line != "b" {
		t.Fatalf("first: %q, %v", line, err)
	}
	second, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	_ = second.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := second.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
		t.Fatalf("second connection served while the first holds the only slot: %d, %v", n, err)
	}
	first.Close()
	if line, err := readLine(t, second); err != nil || line != "b" {
		t.Fatalf("second after the first closed: %q, %v", line, err)
	}
}

// TestRedis carries a real protocol: redis-cli talks to redis-server
// through a TCP route.
func TestRedis(t *testing.T) {
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed (apt-get install redis-server redis-tools; test/run.sh does it)")
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatal("redis-cli is not installed (apt-get install redis-tools; test/run.sh does it)")
	}
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, server, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	l := &ir.Listener{Name: "tcp", Protocol: ir.ProtocolTCP, L4Routes: []*ir.L4Route{l4route("tcproute/default/redis/rule/0", nil, "redis")}}
	_, gw := start(t, Options{}, l, map[string]Dialer{"redis": &testDialer{addr: addr}})
	host, gport, _ := net.SplitHostPort(gw)
	run := func(args ...string) string {
		out, err := exec.Command(cli, append([]string{"-h", host, "-p", gport}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run("PING"); got != "PONG" {
		t.Fatalf("PING: %q", got)
	}
	value := strings.Repeat("v", 100000)
	if got := run("SET", "causeway", value); got != "OK" {
		t.Fatalf("SET: %q", got)
	}
	if got := run("GET", "causeway"); got != value {
		t.Fatalf("GET returned %d bytes, want %d", len(got), len(value))
	}
	if got := run("INCRBY", "n", "41"); got != "41" {
		t.Fatalf("INCRBY: %q", got)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond until it holds, failing after 10s.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
