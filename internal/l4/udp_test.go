package l4

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"causeway.dev/causeway/internal/ir"
)

// dnsServer answers A queries with ip and records the source addresses it
// sees.
type dnsServer struct {
	ip      [4]byte
	addr    string
	mu      sync.Mutex
	sources map[string]int
}

func startDNS(t testing.TB, ip [4]byte) *dnsServer {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	d := &dnsServer{ip: ip, addr: pc.LocalAddr().String(), sources: map[string]int{}}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
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
			d.mu.Lock()
			d.sources[from.String()]++
			d.mu.Unlock()
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
			_ = b.StartQuestions()
			_ = b.Question(q)
			_ = b.StartAnswers()
			_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: d.ip})
			out, err := b.Finish()
			if err == nil {
				_, _ = pc.WriteToUDPAddrPort(out, from)
			}
		}
	}()
	return d
}

func (d *dnsServer) distinctSources() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.sources)
}

// query sends an A query for name over c and returns the answer's address.
func query(t testing.TB, c *net.UDPConn, id uint16, name string) netip.Addr {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
	_ = b.StartQuestions()
	_ = b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET})
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	// UDP may drop a datagram even on loopback: retry a few times.
	for attempt := 0; attempt < 5; attempt++ {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			continue
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil || h.ID != id {
			t.Fatalf("bad answer: %v (id %d, want %d)", err, h.ID, id)
		}
		_ = p.SkipAllQuestions()
		a, err := p.AllAnswers()
		if err != nil || len(a) != 1 {
			t.Fatalf("answers %v, %v", a, err)
		}
		return netip.AddrFrom4(a[0].Body.(*dnsmessage.AResource).A)
	}
	t.Fatal("no DNS answer through the gateway")
	return netip.Addr{}
}

// TestUDPDNS: DNS queries through the gateway; each client has its own
// session (its own source address at the server), sessions expire when
// idle, and backends share sessions by weight.
func TestUDPDNS(t *testing.T) {
	one := startDNS(t, [4]byte{10, 0, 0, 1})
	two := startDNS(t, [4]byte{10, 0, 0, 2})
	r := &ir.L4Route{Name: "udproute/default/dns/rule/0", IdleTimeout: ir.Duration(300 * time.Millisecond), Backends: []*ir.Backend{
		{Cluster: "one", Weight: 1, Name: "one"},
	}}
	srv, addr := start(t, Options{}, &ir.Listener{Name: "udp", Protocol: ir.ProtocolUDP, L4Routes: []*ir.L4Route{r}},
		map[string]Dialer{"one": &testDialer{addr: one.addr}, "two": &testDialer{addr: two.addr}})
	gw := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr))

	var clients []*net.UDPConn
	for i := range 3 {
		c, err := net.DialUDP("udp", nil, gw)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
		for q := range 2 {
			if got := query(t, c, uint16(i*10+q), "db.example.com."); got != netip.AddrFrom4([4]byte{10, 0, 0, 1}) {
				t.Fatalf("client %d: answer %v", i, got)
			}
		}
	}
	if n := one.distinctSources(); n != 3 {
		t.Fatalf("the DNS server saw %d source addresses, want 3 (one session per client)", n)
	}
	if n := srv.Sessions(); n != 3 {
		t.Fatalf("%d sessions, want 3", n)
	}
	waitFor(t, func() bool { return srv.Sessions() == 0 })
	// A new datagram after expiry opens a new session: a new source.
	query(t, clients[0], 99, "db.example.com.")
	if n := one.distinctSources(); n != 4 {
		t.Fatalf("after expiry the server saw %d sources, want 4", n)
	}
}

// TestUDPWeights: sessions are shared between backends by weight.
func TestUDPWeights(t *testing.T) {
	one := startDNS(t, [4]byte{10, 0, 0, 1})
	two := startDNS(t, [4]byte{10, 0, 0, 2})
	r := &ir.L4Route{Name: "r", Backends: []*ir.Backend{
		{Cluster: "one", Weight: 1, Name: "one"},
		{Cluster: "two", Weight: 3, Name: "two"},
	}}
	_, addr := start(t, Options{}, &ir.Listener{Name: "udp", Protocol: ir.ProtocolUDP, L4Routes: []*ir.L4Route{r}},
		map[string]Dialer{"one": &testDialer{addr: one.addr}, "two": &testDialer{addr: two.addr}})
	gw := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr))
	counts := map[netip.Addr]int{}
	const n = 120
	for i := range n {
		c, err := net.DialUDP("udp", nil, gw)
		if err != nil {
			t.Fatal(err)
		}
		counts[query(t, c, uint16(i), "x.test.")]++
		c.Close()
	}
	if got := counts[netip.AddrFrom4([4]byte{10, 0, 0, 2})]; got < 70 || got > 110 {
		t.Fatalf("weight 3 of 4 got %d of %d sessions (%v)", got, n, counts)
	}
}

// TestUDPMaxSessions: datagrams of clients beyond the bound are dropped.
func TestUDPMaxSessions(t *testing.T) {
	one := startDNS(t, [4]byte{10, 0, 0, 1})
	_, addr := start(t, Options{MaxSessions: 1}, &ir.Listener{Name: "udp", Protocol: ir.ProtocolUDP, L4Routes: []*ir.L4Route{l4route("r", nil, "one")}},
		map[string]Dialer{"one": &testDialer{addr: one.addr}})
	gw := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr))
	a, _ := net.DialUDP("udp", nil, gw)
	defer a.Close()
	query(t, a, 1, "a.test.")
	b, _ := net.DialUDP("udp", nil, gw)
	defer b.Close()
	msg := []byte{0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'b', 0, 0, 1, 0, 1}
	_, _ = b.Write(msg)
	_ = b.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := b.Read(make([]byte, 512)); err == nil {
		t.Fatalf("second client answered (%d bytes) beyond MaxSessions 1", n)
	}
}
