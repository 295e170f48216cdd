package push

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"

	pb "causeway.dev/causeway/api/push/v1alpha1"
	"causeway.dev/causeway/internal/ir"
)

// fleetConfig has one listener per gateway ("ns/gwN", port 8000+N), each
// with routes routes whose backends are the cluster "cN-rR"; version tags
// route 0 of gateway 0 so that configurations differ by one route.
func fleetConfig(gateways, routes int, tag string) *ir.Config {
	cfg := &ir.Config{}
	for g := range gateways {
		gw := fmt.Sprintf("ns/gw%d", g)
		vh := &ir.VirtualHost{Domain: "*", Gateway: gw}
		for r := range routes {
			cl := fmt.Sprintf("c%d-r%d", g, r)
			path := fmt.Sprintf("/r%d", r)
			if g == 0 && r == 0 {
				path += tag
			}
			vh.Routes = append(vh.Routes, &ir.Route{Name: cl, Match: ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: path}},
				Backends: []*ir.Backend{{Cluster: cl, Weight: 1}}})
			cfg.Clusters = append(cfg.Clusters, &ir.Cluster{Name: cl, Protocol: ir.UpstreamHTTP1,
				Endpoints: []ir.Endpoint{{Address: fmt.Sprintf("127.0.0.1:%d", 9000+r)}}})
		}
		cfg.Listeners = append(cfg.Listeners, &ir.Listener{Name: fmt.Sprintf("l%d", g), Address: "127.0.0.1",
			Port: 8000 + g, Protocol: ir.ProtocolHTTP, VirtualHosts: []*ir.VirtualHost{vh}, Gateways: []string{gw}})
	}
	cfg.Finalize()
	return cfg
}

func TestCodecKeepsSecrets(t *testing.T) {
	l := &ir.Listener{Name: "l", Port: 443, Protocol: ir.ProtocolHTTPS, Gateways: []string{"ns/a"},
		TLS: &ir.TLS{Certificates: []*ir.Certificate{
			{SNI: []string{"a.example"}, CertPEM: []byte("cert-a"), KeyPEM: []byte("key-a")},
			{CertPEM: []byte("cert-b"), KeyPEM: []byte("key-b")},
		}, ClientValidation: &ir.ClientValidation{CACertPEM: []byte("client-ca")}}}
	r, err := EncodeListener(l)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(r.Json), "key-a") {
		t.Fatal("key material in the JSON part")
	}
	got, err := DecodeListener(r)
	if err != nil {
		t.Fatal(err)
	}
	if c := got.TLS.Certificates; string(c[0].KeyPEM) != "key-a" || string(c[1].CertPEM) != "cert-b" ||
		c[0].SNI[0] != "a.example" || string(got.TLS.ClientValidation.CACertPEM) != "client-ca" {
		t.Fatalf("listener secrets lost: %+v", got.TLS)
	}
	// A rotated key is a new version even though the JSON is the same.
	l.TLS.Certificates[1].KeyPEM = []byte("key-b2")
	r2, _ := EncodeListener(l)
	if r2.Version == r.Version || string(r2.Json) != string(r.Json) {
		t.Fatalf("rotation: versions %s %s", r.Version, r2.Version)
	}

	c := &ir.Cluster{Name: "c", TLS: &ir.UpstreamTLS{SNI: "b", CACertPEM: []byte("ca"),
		ClientCertPEM: []byte("cc"), ClientKeyPEM: []byte("ck")}}
	cr, _ := EncodeCluster(c)
	gc, err := DecodeCluster(cr)
	if err != nil {
		t.Fatal(err)
	}
	if string(gc.TLS.CACertPEM) != "ca" || string(gc.TLS.ClientCertPEM) != "cc" || string(gc.TLS.ClientKeyPEM) != "ck" {
		t.Fatalf("cluster secrets lost: %+v", gc.TLS)
	}
	if _, err := DecodeCluster(r); err == nil {
		t.Fatal("a listener decoded as a cluster")
	}
}

func TestFilterPerGateway(t *testing.T) {
	cfg := fleetConfig(3, 2, "")
	// A cluster no route references is sent to nobody.
	cfg.Clusters = append(cfg.Clusters, &ir.Cluster{Name: "orphan"})
	snap, err := newSnapshot(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := snap.filter([]string{"ns/gw1"}, nil)
	var names []string
	for n := range v.res {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{"cluster/c1-r0", "cluster/c1-r1", "listener/l1"}
	if !slices.Equal(names, want) {
		t.Fatalf("view of ns/gw1 = %v, want %v", names, want)
	}
	both := snap.filter([]string{"ns/gw0", "ns/gw2"}, nil)
	if len(both.res) != 6 || both.res["listener/l1"] != nil {
		t.Fatalf("view of gw0+gw2 has %d resources", len(both.res))
	}
	if none := snap.filter([]string{"ns/other"}, nil); len(none.res) != 0 {
		t.Fatalf("unknown gateway got %d resources", len(none.res))
	}
}

func TestIncrementalDiff(t *testing.T) {
	s1, _ := newSnapshot(fleetConfig(2, 3, ""), nil, nil)
	s2, _ := newSnapshot(fleetConfig(2, 3, "-changed"), s1, nil)
	v0 := s1.filter([]string{"ns/gw0"}, nil)
	v1 := s2.filter([]string{"ns/gw0"}, v0)
	if v1.version == v0.version || v1.prev != v0.version {
		t.Fatalf("versions %s -> %s (prev %s)", v0.version, v1.version, v1.prev)
	}
	if len(v1.changed) != 1 || v1.changed[0].Name != "listener/l0" || len(v1.removed) != 0 {
		t.Fatalf("diff = %v removed %v", names(v1.changed), v1.removed)
	}
	// Unchanged resources are shared with the previous snapshot.
	if v1.res["cluster/c0-r1"] != v0.res["cluster/c0-r1"] {
		t.Fatal("unchanged cluster re-encoded")
	}
	// The other gateway's view does not change at all.
	o0 := s1.filter([]string{"ns/gw1"}, nil)
	if o1 := s2.filter([]string{"ns/gw1"}, o0); o1 != o0 {
		t.Fatal("view of an unconcerned gateway changed")
	}
}

func names(rs []*pb.Resource) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func TestTokens(t *testing.T) {
	tok, err := ParseTokens(strings.NewReader("# comment\nsecret-a team-a/* shared/gw\n\nsecret-b team-b/gw\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		token string
		gws   []string
		ok    bool
	}{
		{"secret-a", []string{"team-a/x", "shared/gw"}, true},
		{"secret-a", []string{"team-a/x", "team-b/gw"}, false},
		{"secret-b", []string{"team-b/gw"}, true},
		{"secret-c", []string{"team-b/gw"}, false},
		{"secret-b", nil, false},
		{"", []string{"team-b/gw"}, false},
	} {
		if err := tok.Authorize(c.token, c.gws); (err == nil) != c.ok {
			t.Errorf("Authorize(%q, %v) = %v, want ok=%v", c.token, c.gws, err, c.ok)
		}
	}
	if _, err := ParseTokens(strings.NewReader("lonely\n")); err == nil {
		t.Fatal("a token without patterns was accepted")
	}
}

// harness is a Server on a loopback gRPC socket.
type harness struct {
	t    *testing.T
	srv  *Server
	addr string
}

func newHarness(t *testing.T, debounce time.Duration) *harness {
	t.Helper()
	tok, _ := ParseTokens(strings.NewReader("tok ns/*\nlimited ns/gw1\n"))
	srv := NewServer(Options{Tokens: tok, Debounce: debounce, Logger: quiet})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(ServerOptions()...)
	srv.Register(g)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(func() { g.Stop(); srv.Close() })
	return &harness{t: t, srv: srv, addr: ln.Addr().String()}
}

// client is a raw protocol client, to check the wire behaviour exactly.
type client struct {
	t      *testing.T
	stream grpc.BidiStreamingClient[pb.Request, pb.Response]
	resps  chan *pb.Response
	errs   chan error
}

func (h *harness) connect(first *pb.Request) *client {
	h.t.Helper()
	cc, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.t.Cleanup(func() { cancel(); cc.Close() })
	st, err := pb.NewPushClient(cc).Stream(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := st.Send(first); err != nil {
		h.t.Fatal(err)
	}
	c := &client{t: h.t, stream: st, resps: make(chan *pb.Response, 16), errs: make(chan error, 1)}
	go func() {
		for {
			r, err := st.Recv()
			if err != nil {
				c.errs <- err
				return
			}
			c.resps <- r
		}
	}()
	return c
}

func (c *client) recv() *pb.Response {
	c.t.Helper()
	select {
	case r := <-c.resps:
		return r
	case err := <-c.errs:
		c.t.Fatalf("stream ended: %v", err)
	case <-time.After(10 * time.Second):
		c.t.Fatal("no response within 10s")
	}
	return nil
}

func (c *client) send(r *pb.Request) {
	c.t.Helper()
	if err := c.stream.Send(r); err != nil {
		c.t.Fatal(err)
	}
}

var quiet = slog.New(slog.DiscardHandler)

func node(id string, gws ...string) *pb.Node {
	return &pb.Node{Id: id, Role: "gateway", Gateways: gws, Token: "tok"}
}

// waitStatus polls the status table until ok holds for proxy id.
func (h *harness) waitStatus(id string, ok func(ProxyStatus) bool) ProxyStatus {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, p := range h.srv.Status().Proxies {
			if p.ID == id && ok(p) {
				return p
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("status of %s never matched: %+v", id, h.srv.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStreamAckNackAndIncrement(t *testing.T) {
	h := newHarness(t, -1)
	h.srv.Update(fleetConfig(2, 3, ""), nil)
	c := h.connect(&pb.Request{Node: node("p0", "ns/gw0")})

	r1 := c.recv()
	if len(r1.Resources) != 4 || r1.Nonce == "" || r1.Version == "" {
		t.Fatalf("first response: %v", names(r1.Resources))
	}
	c.send(&pb.Request{Version: r1.Version, ResponseNonce: r1.Nonce})
	h.waitStatus("p0", func(p ProxyStatus) bool { return p.AckedVersion == r1.Version && !p.Pending })

	// One route changes: only its listener travels.
	h.srv.Update(fleetConfig(2, 3, "-v2"), nil)
	r2 := c.recv()
	if got := names(r2.Resources); !slices.Equal(got, []string{"listener/l0"}) || len(r2.Removed) != 0 {
		t.Fatalf("incremental response: %v removed %v", got, r2.Removed)
	}
	if r2.Nonce == r1.Nonce || r2.Version == r1.Version {
		t.Fatal("nonce or version reused")
	}
	// A NACK keeps the acked version and is shown; the same version is
	// not sent again.
	c.send(&pb.Request{Version: r1.Version, ResponseNonce: r2.Nonce, ErrorDetail: &pb.Status{Message: "cannot bind"}})
	p := h.waitStatus("p0", func(p ProxyStatus) bool { return p.LastNack != nil })
	if p.AckedVersion != r1.Version || p.LastNack.Message != "cannot bind" || p.LastNack.Version != r2.Version ||
		p.DesiredVersion != r2.Version {
		t.Fatalf("status after NACK: %+v", p)
	}
	// A stale ACK (old nonce) changes nothing.
	c.send(&pb.Request{Version: r2.Version, ResponseNonce: r1.Nonce})

	// The next change is diffed against what the proxy acked, and a
	// removed cluster is named.
	cfg3 := fleetConfig(2, 2, "-v3")
	h.srv.Update(cfg3, nil)
	r3 := c.recv()
	if got := names(r3.Resources); !slices.Equal(got, []string{"listener/l0"}) ||
		!slices.Equal(r3.Removed, []string{"cluster/c0-r2"}) {
		t.Fatalf("response after NACK: %v removed %v", got, r3.Removed)
	}
	c.send(&pb.Request{Version: r3.Version, ResponseNonce: r3.Nonce})
	p = h.waitStatus("p0", func(p ProxyStatus) bool { return p.AckedVersion == r3.Version })
	if p.LastNack != nil {
		t.Fatalf("NACK still shown after a later ACK: %+v", p.LastNack)
	}
	select {
	case r := <-c.resps:
		t.Fatalf("unexpected response %v", names(r.Resources))
	default:
	}
}

func TestUnconcernedProxiesGetNothing(t *testing.T) {
	h := newHarness(t, -1)
	h.srv.Update(fleetConfig(2, 2, ""), nil)
	c0 := h.connect(&pb.Request{Node: node("p0", "ns/gw0")})
	c1 := h.connect(&pb.Request{Node: node("p1", "ns/gw1")})
	for _, c := range []*client{c0, c1} {
		r := c.recv()
		c.send(&pb.Request{Version: r.Version, ResponseNonce: r.Nonce})
	}
	h.waitStatus("p1", func(p ProxyStatus) bool { return p.AckedVersion != "" })
	h.srv.Update(fleetConfig(2, 2, "-x"), nil)
	r := c0.recv()
	c0.send(&pb.Request{Version: r.Version, ResponseNonce: r.Nonce})
	h.waitStatus("p0", func(p ProxyStatus) bool { return p.AckedVersion == r.Version })
	// Then a change for gw1 reaches p1 first of all: nothing was queued
	// for it by the gw0 change.
	cfg := fleetConfig(2, 2, "-x")
	cfg.Listeners[1].VirtualHosts[0].Routes[0].Match.Path.Value = "/gw1-changed"
	cfg.Finalize()
	h.srv.Update(cfg, nil)
	r1 := c1.recv()
	if got := names(r1.Resources); !slices.Equal(got, []string{"listener/l1"}) {
		t.Fatalf("p1 got %v", got)
	}
}

func TestResumeSendsNothingUnchanged(t *testing.T) {
	h := newHarness(t, -1)
	cfg := fleetConfig(1, 3, "")
	h.srv.Update(cfg, nil)
	c := h.connect(&pb.Request{Node: node("p0", "ns/gw0")})
	r := c.recv()
	vers := map[string]string{}
	for _, res := range r.Resources {
		vers[res.Name] = res.Version
	}
	// A proxy reconnecting (as to a restarted replica) with what it runs.
	again := h.connect(&pb.Request{Node: node("p0b", "ns/gw0"), Version: r.Version, ResourceVersions: vers})
	h.waitStatus("p0b", func(p ProxyStatus) bool { return p.AckedVersion == r.Version })
	h.srv.Update(fleetConfig(1, 3, "-new"), nil)
	// Its first response is the delta: nothing was sent on resumption.
	got := again.recv()
	if n := names(got.Resources); !slices.Equal(n, []string{"listener/l0"}) {
		t.Fatalf("resumed proxy got %v", n)
	}
}

func TestDebounceCoalesces(t *testing.T) {
	h := newHarness(t, 200*time.Millisecond)
	var last *ir.Config
	for i := range 20 {
		last = fleetConfig(1, 2, fmt.Sprint(i))
		h.srv.Update(last, nil)
	}
	c := h.connect(&pb.Request{Node: node("p0", "ns/gw0")})
	r := c.recv()
	snap, _ := newSnapshot(last, nil, nil)
	if want := snap.filter([]string{"ns/gw0"}, nil).version; r.Version != want {
		t.Fatalf("first response version %s, want the last update's %s", r.Version, want)
	}
	if h.srv.Version() != last.Version {
		t.Fatalf("server version %s, want %s", h.srv.Version(), last.Version)
	}
}

func TestUnauthorisedProxyRefused(t *testing.T) {
	h := newHarness(t, -1)
	h.srv.Update(fleetConfig(2, 1, ""), nil)
	for _, n := range []*pb.Node{
		{Id: "x", Gateways: []string{"ns/gw0"}, Token: "wrong"},
		{Id: "y", Gateways: []string{"ns/gw0"}, Token: "limited"},
		{Gateways: []string{"ns/gw0"}, Token: "tok"},
	} {
		c := h.connect(&pb.Request{Node: n})
		select {
		case err := <-c.errs:
			if code := grpcstatus.Code(err); code != codes.PermissionDenied && code != codes.InvalidArgument {
				t.Fatalf("node %v: %v", n, err)
			}
		case r := <-c.resps:
			t.Fatalf("node %v received %v", n, names(r.Resources))
		case <-time.After(10 * time.Second):
			t.Fatal("no refusal")
		}
	}
	if n := len(h.srv.Status().Proxies); n != 0 {
		t.Fatalf("%d refused proxies listed", n)
	}
}

func TestMaxInFlightSyncsInWaves(t *testing.T) {
	tok, _ := ParseTokens(strings.NewReader("tok ns/*\n"))
	srv := NewServer(Options{Tokens: tok, Debounce: -1, MaxInFlight: 1, Logger: quiet})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(ServerOptions()...)
	srv.Register(g)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(func() { g.Stop(); srv.Close() })
	h := &harness{t: t, srv: srv, addr: ln.Addr().String()}
	srv.Update(fleetConfig(1, 1, ""), nil)
	a := h.connect(&pb.Request{Node: node("a", "ns/gw0")})
	ra := a.recv()
	b := h.connect(&pb.Request{Node: node("b", "ns/gw0")})
	h.waitStatus("b", func(ProxyStatus) bool { return true })
	// b waits while a's Response is unacknowledged.
	select {
	case r := <-b.resps:
		t.Fatalf("b received %v while a's response was in flight", names(r.Resources))
	case <-time.After(200 * time.Millisecond):
	}
	a.send(&pb.Request{Version: ra.Version, ResponseNonce: ra.Nonce})
	if rb := b.recv(); rb.Version != ra.Version {
		t.Fatalf("b got version %s, want %s", rb.Version, ra.Version)
	}
}

func TestCAServesVerifiableCertificates(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca.CertPEM) {
		t.Fatal("CA PEM")
	}
	// Two serving certificates from the same CA (a restart) both verify,
	// in a real handshake and for every host.
	for range 2 {
		cfg, err := ca.ServerTLS([]string{"127.0.0.1", "cp.example"})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			if c, err := ln.Accept(); err == nil {
				_ = c.(*tls.Conn).Handshake()
				c.Close()
			}
		}()
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		c.Close()
		ln.Close()
		leaf, _ := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "cp.example"}); err != nil {
			t.Fatalf("cp.example: %v", err)
		}
	}
	other, _ := NewCA()
	cfg, _ := other.ServerTLS([]string{"127.0.0.1"})
	leaf, _ := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1"}); err == nil {
		t.Fatal("a certificate of another CA verified")
	}
}

// On a socket two Gateways share, the proxies of one receive only its
// routes and the clusters those reference: neither the other Gateway's
// routes nor its backends' addresses.
func TestSharedListenerSendsOnlyOwnRoutes(t *testing.T) {
	route := func(name, cluster string, gws ...string) *ir.Route {
		return &ir.Route{Name: name, Gateways: gws, Backends: []*ir.Backend{{Name: cluster, Cluster: cluster, Weight: 1}}}
	}
	cfg := &ir.Config{Version: "v1",
		Listeners: []*ir.Listener{{Name: "0.0.0.0:80", Port: 80, Protocol: ir.ProtocolHTTP, Gateways: []string{"ns/a", "ns/b"},
			VirtualHosts: []*ir.VirtualHost{
				{Domain: "a.example", Gateway: "ns/a", Routes: []*ir.Route{route("ra", "ca", "ns/a")}},
				{Domain: "b.example", Gateway: "ns/b", Routes: []*ir.Route{route("rb", "cb", "ns/b")}},
				{Domain: "*", Gateway: "ns/a", Routes: []*ir.Route{route("both", "cboth", "ns/a", "ns/b"), route("rb2", "cb2", "ns/b")}},
			}},
			{Name: "0.0.0.0:443", Port: 443, Protocol: ir.ProtocolTLS, Gateways: []string{"ns/a", "ns/b"}, L4Routes: []*ir.L4Route{
				{Name: "ta", Gateways: []string{"ns/a"}, Hostnames: []string{"a.example"}, Backends: []*ir.Backend{{Name: "tca", Cluster: "tca", Weight: 1}}},
				{Name: "tb", Gateways: []string{"ns/b"}, Hostnames: []string{"b.example"}, Backends: []*ir.Backend{{Name: "tcb", Cluster: "tcb", Weight: 1}}},
			}}},
		Clusters: []*ir.Cluster{{Name: "ca"}, {Name: "cb"}, {Name: "cboth"}, {Name: "cb2"}, {Name: "tca"}, {Name: "tcb"}},
	}
	snap, err := newSnapshot(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := snap.filter([]string{"ns/a"}, nil)
	var names []string
	for n := range v.res {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"cluster/ca", "cluster/cboth", "cluster/tca", "listener/0.0.0.0:443", "listener/0.0.0.0:80"}; !slices.Equal(names, want) {
		t.Fatalf("view of ns/a = %v, want %v", names, want)
	}
	l, err := DecodeListener(v.res["listener/0.0.0.0:80"])
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, vh := range l.VirtualHosts {
		for _, r := range vh.Routes {
			got = append(got, vh.Domain+"/"+r.Name)
		}
	}
	if want := []string{"a.example/ra", "*/both"}; !slices.Equal(got, want) {
		t.Errorf("routes sent to ns/a's proxies = %v, want %v", got, want)
	}
	tl, err := DecodeListener(v.res["listener/0.0.0.0:443"])
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.L4Routes) != 1 || tl.L4Routes[0].Name != "ta" {
		t.Errorf("L4 routes sent to ns/a's proxies = %+v, want only ta", tl.L4Routes)
	}
	// Both Gateways' proxies get the listeners whole.
	if all := snap.filter([]string{"ns/a", "ns/b"}, nil); len(all.res) != 8 {
		t.Errorf("view of both has %d resources, want 8", len(all.res))
	}
}
