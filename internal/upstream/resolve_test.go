package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"causeway.dev/causeway/internal/ir"
)

// dnsServer answers A queries over UDP on loopback with a switchable
// address; a nil address answers SERVFAIL.
type dnsServer struct {
	pc      net.PacketConn
	answer  atomic.Pointer[[4]byte]
	queries atomic.Int64
}

func newDNSServer(t *testing.T) *dnsServer {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{pc: pc}
	t.Cleanup(func() { pc.Close() })
	go s.serve()
	return s
}

func (s *dnsServer) serve() {
	buf := make([]byte, 512)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		s.queries.Add(1)
		ip := s.answer.Load()
		rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
		if ip == nil {
			rh.RCode = dnsmessage.RCodeServerFailure
		}
		b := dnsmessage.NewBuilder(nil, rh)
		b.EnableCompression()
		b.StartQuestions()
		b.Question(q)
		b.StartAnswers()
		if ip != nil && q.Type == dnsmessage.TypeA {
			b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}, dnsmessage.AResource{A: *ip})
		}
		out, err := b.Finish()
		if err == nil {
			s.pc.WriteTo(out, from)
		}
	}
}

func (s *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.pc.LocalAddr().String())
	}}
}

// twoBackends listens on 127.0.0.1:P and 127.0.0.2:P, answering "a" and
// "b".
func twoBackends(t *testing.T) (port int) {
	for range 20 {
		l1, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = l1.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", "127.0.0.2:"+strconv.Itoa(port))
		if err != nil {
			l1.Close()
			continue
		}
		for ln, name := range map[net.Listener]string{l1: "a", l2: "b"} {
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) })}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
		}
		return port
	}
	t.Fatal("no port free on both 127.0.0.1 and 127.0.0.2")
	return 0
}

func TestReResolution(t *testing.T) {
	checkLeaks(t)
	dns := newDNSServer(t)
	dns.answer.Store(&[4]byte{127, 0, 0, 1})
	port := twoBackends(t)
	m := newManager(t, Options{ResolveInterval: 20 * time.Millisecond, Resolver: dns.resolver()},
		&ir.Cluster{Name: "h", Endpoints: []ir.Endpoint{{Hostname: "backend.test.", Port: port}}})
	c := m.Cluster("h")
	if got := do(t, c, "/"); got != "a" { // resolved synchronously by Update
		t.Fatalf("got %q, want a", got)
	}
	dns.answer.Store(&[4]byte{127, 0, 0, 2})
	deadline := time.Now().Add(10 * time.Second)
	for do(t, c, "/") != "b" {
		if time.Now().After(deadline) {
			t.Fatal("new DNS answer not picked up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// DNS fails: the last good addresses stay.
	dns.answer.Store(nil)
	for q := dns.queries.Load(); dns.queries.Load() < q+6; {
		if time.Now().After(deadline) {
			t.Fatal("no re-resolution")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := do(t, c, "/"); got != "b" {
		t.Fatalf("after DNS failure got %q, want b", got)
	}
}
