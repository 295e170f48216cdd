package push

import (
	"bytes"
	"context"
	"crypto/x509"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	pb "causeway.dev/causeway/api/push/v1alpha1"
	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
)

// sharedTLS is one HTTPS socket shared by ns/a and ns/b, each with its own
// certificate, plus ns/c's own HTTP listener.
func sharedTLS() *ir.Config {
	cfg := &ir.Config{Listeners: []*ir.Listener{{
		Name: "0.0.0.0:443", Port: 443, Protocol: ir.ProtocolHTTPS, Gateways: []string{"ns/a", "ns/b"},
		TLS: &ir.TLS{Certificates: []*ir.Certificate{
			{SNI: []string{"a.example"}, CertPEM: []byte("CERT-OF-A"), KeyPEM: []byte("KEY-OF-A"), Origin: "Secret/ns/a-tls"},
			{SNI: []string{"b.example"}, CertPEM: []byte("CERT-OF-B"), KeyPEM: []byte("KEY-OF-B"), Origin: "Secret/ns/b-tls"},
		}},
		VirtualHosts: []*ir.VirtualHost{{Domain: "a.example", Gateway: "ns/a"}, {Domain: "b.example", Gateway: "ns/b"}},
	}, {Name: "0.0.0.0:80", Port: 80, Protocol: ir.ProtocolHTTP, Gateways: []string{"ns/c"}}}}
	cfg.Finalize()
	return cfg
}

// firstResponse connects a proxy serving gws and returns the bytes of the
// first Response as they crossed the stream.
func firstResponse(t *testing.T, h *harness, id string, gws ...string) (*pb.Response, []byte) {
	t.Helper()
	r := h.connect(&pb.Request{Node: node(id, gws...)}).recv()
	b, err := proto.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return r, b
}

func TestSharedListenerSendsOnlyOwnKeys(t *testing.T) {
	owners := Owners{"Secret/ns/a-tls": {"ns/a"}, "Secret/ns/b-tls": {"ns/b"}}
	h := newHarness(t, -1)
	h.srv.Update(sharedTLS(), owners)

	_, wire := firstResponse(t, h, "pa", "ns/a")
	if !bytes.Contains(wire, []byte("KEY-OF-A")) {
		t.Fatal("the proxy of ns/a did not receive its own key")
	}
	if bytes.Contains(wire, []byte("KEY-OF-B")) || bytes.Contains(wire, []byte("CERT-OF-B")) {
		t.Fatal("the proxy of ns/a received ns/b's certificate or key")
	}
	// What it receives decodes and pairs keys with their certificates.
	r, _ := firstResponse(t, h, "pa2", "ns/a")
	for _, res := range r.Resources {
		if res.Kind != pb.Kind_KIND_LISTENER || res.Name != ListenerPrefix+"0.0.0.0:443" {
			continue
		}
		l, err := DecodeListener(res)
		if err != nil {
			t.Fatal(err)
		}
		if c := l.TLS.Certificates; len(c) != 1 || string(c[0].KeyPEM) != "KEY-OF-A" || c[0].SNI[0] != "a.example" {
			t.Fatalf("ns/a's listener certificates: %+v", c)
		}
	}

	_, both := firstResponse(t, h, "pab", "ns/a", "ns/b")
	if !bytes.Contains(both, []byte("KEY-OF-A")) || !bytes.Contains(both, []byte("KEY-OF-B")) {
		t.Fatal("the proxy of both Gateways lacks a key")
	}
	if _, c := firstResponse(t, h, "pc", "ns/c"); bytes.Contains(c, []byte("KEY-OF")) {
		t.Fatal("the proxy of ns/c received a key of another socket")
	}

	// Unknown owners: a shared socket's certificates go to nobody partial.
	h2 := newHarness(t, -1)
	h2.srv.Update(sharedTLS(), nil)
	if _, w := firstResponse(t, h2, "pa", "ns/a"); bytes.Contains(w, []byte("KEY-OF")) {
		t.Fatal("with no owners known, a partial proxy received a key")
	}
	if _, w := firstResponse(t, h2, "pab", "ns/a", "ns/b"); !bytes.Contains(w, []byte("KEY-OF-B")) {
		t.Fatal("with no owners known, the proxy of the whole socket lacks a key")
	}
}

func TestSecretOwners(t *testing.T) {
	ns := func(s string) *gwv1.Namespace { n := gwv1.Namespace(s); return &n }
	gw := func(namespace, name string, refs ...gwv1.SecretObjectReference) *gwv1.Gateway {
		return &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			Spec: gwv1.GatewaySpec{Listeners: []gwv1.Listener{{Name: "https", Protocol: gwv1.HTTPSProtocolType, Port: 443,
				TLS: &gwv1.ListenerTLSConfig{CertificateRefs: refs}}}}}
	}
	snap := &resource.Snapshot{
		Gateways: []*gwv1.Gateway{
			gw("a", "gw", gwv1.SecretObjectReference{Name: "own"}, gwv1.SecretObjectReference{Name: "shared", Namespace: ns("certs")}),
			gw("b", "gw", gwv1.SecretObjectReference{Name: "shared", Namespace: ns("certs")}),
		},
		ReferenceGrants: []*gwv1.ReferenceGrant{{ObjectMeta: metav1.ObjectMeta{Namespace: "certs", Name: "g"},
			Spec: gwv1.ReferenceGrantSpec{
				From: []gwv1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: "Gateway", Namespace: "a"}},
				To:   []gwv1.ReferenceGrantTo{{Group: "", Kind: "Secret"}}}}},
	}
	o := SecretOwners(snap)
	if got := o["Secret/a/own"]; !slices.Equal(got, []string{"a/gw"}) {
		t.Errorf("Secret/a/own owned by %v", got)
	}
	// b/gw references certs/shared without a grant: not its owner.
	if got := o["Secret/certs/shared"]; !slices.Equal(got, []string{"a/gw"}) {
		t.Errorf("Secret/certs/shared owned by %v, want a/gw only", got)
	}
}

func TestCertGateways(t *testing.T) {
	u := func(s string) *url.URL {
		p, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert := &x509.Certificate{
		URIs: []*url.URL{u("spiffe://causeway.local/gateway/team-a/web"), u("spiffe://other.td/gateway/x/y"),
			u("spiffe://causeway.local/ns/team-a/sa/default"), u("spiffe://causeway.local/gateway/team-a/*")},
		DNSNames: []string{"api.team-b.gateway.causeway.local", "web.team-a.gateway.causeway.local",
			"a.b.c.gateway.causeway.local", "example.com"},
	}
	got := CertGateways(cert, "causeway.local")
	want := []string{"team-a/web", "team-b/api"}
	if !slices.Equal(got, want) {
		t.Fatalf("CertGateways = %v, want %v", got, want)
	}
	if got := CertGateways(cert, "other.td"); !slices.Equal(got, []string{"x/y"}) {
		t.Fatalf("other trust domain: %v", got)
	}
}

// recordSink is a StatusSink keeping the last report.
type recordSink struct {
	mu  sync.Mutex
	rep *status.Report
}

func (s *recordSink) Update(_ *resource.Snapshot, rep *status.Report, _ func(*gwv1.Gateway) []string) {
	s.mu.Lock()
	s.rep = rep
	s.mu.Unlock()
}

func (s *recordSink) programmed(gw string) status.Condition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return programmedOf(s.rep, gw)
}

func programmedOf(rep *status.Report, gw string) status.Condition {
	if rep == nil {
		return status.Condition{}
	}
	for _, e := range rep.Resources {
		if e.Ref.Kind == "Gateway" && e.Ref.Namespace+"/"+e.Ref.Name == gw {
			for _, c := range e.Conditions {
				if c.Type == status.Programmed {
					return c
				}
			}
		}
	}
	return status.Condition{}
}

func TestProgrammedFollowsFleet(t *testing.T) {
	h := newHarness(t, -1)
	h.srv.Update(fleetConfig(3, 1, ""), nil)
	rep := &status.Report{}
	for i, ok := range []bool{true, true, false} {
		e := rep.For(status.Ref{Kind: "Gateway", Namespace: "ns", Name: "gw" + string(rune('0'+i))}, status.Source{})
		c := status.Condition{Type: status.Programmed, Status: ok, Reason: status.ReasonProgrammed, Message: "serving listeners http"}
		if !ok {
			c.Reason, c.Message = status.ReasonInvalid, "no listener is served"
		}
		e.Conditions = []status.Condition{{Type: status.Accepted, Status: true, Reason: status.ReasonAccepted}, c}
	}
	sink := &recordSink{}
	r := NewReporter(h.srv, sink)
	r.settle = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	r.Update(nil, rep)

	if c := programmedOf(r.Status(), "ns/gw0"); c.Status || c.Reason != ReasonNoProxies {
		t.Fatalf("no proxies: %+v", c)
	}
	a := h.connect(&pb.Request{Node: node("a", "ns/gw0")})
	ra := a.recv()
	if c := programmedOf(r.Status(), "ns/gw0"); c.Status || c.Reason != status.ReasonPending {
		t.Fatalf("response in flight: %+v", c)
	}
	a.send(&pb.Request{Version: ra.Version, ResponseNonce: ra.Nonce})
	h.waitStatus("a", func(p ProxyStatus) bool { return p.AckedVersion == ra.Version })
	if c := programmedOf(r.Status(), "ns/gw0"); !c.Status || c.Reason != status.ReasonProgrammed {
		t.Fatalf("acked: %+v", c)
	}
	waitFor(t, "the sink sees ns/gw0 programmed", func() bool { return sink.programmed("ns/gw0").Status })

	// Both proxies of ns/gw1 refuse: False, with a refusal's message.
	for _, id := range []string{"b", "c"} {
		cl := h.connect(&pb.Request{Node: node(id, "ns/gw1")})
		rb := cl.recv()
		cl.send(&pb.Request{ResponseNonce: rb.Nonce, ErrorDetail: &pb.Status{Message: "cannot bind 127.0.0.1:8001"}})
		h.waitStatus(id, func(p ProxyStatus) bool { return p.LastNack != nil })
	}
	c := programmedOf(r.Status(), "ns/gw1")
	if c.Status || c.Reason != status.ReasonInvalid || !bytes.Contains([]byte(c.Message), []byte("cannot bind 127.0.0.1:8001")) {
		t.Fatalf("all refused: %+v", c)
	}
	waitFor(t, "the sink sees ns/gw1's refusal", func() bool { return sink.programmed("ns/gw1").Reason == status.ReasonInvalid })
	// Translation's False stands whatever the fleet.
	if c := programmedOf(r.Status(), "ns/gw2"); c.Status || c.Message != "no listener is served" {
		t.Fatalf("ns/gw2: %+v", c)
	}
	// The translation's report itself is untouched.
	if c := programmedOf(rep, "ns/gw0"); !c.Status || c.Message != "serving listeners http" {
		t.Fatalf("input report modified: %+v", c)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSharedEncodingKeepsNonces(t *testing.T) {
	h := newHarness(t, -1)
	h.srv.Update(fleetConfig(1, 2, ""), nil)
	a := h.connect(&pb.Request{Node: node("a", "ns/gw0")})
	b := h.connect(&pb.Request{Node: node("b", "ns/gw0")})
	ra, rb := a.recv(), b.recv()
	if ra.Nonce == "" || ra.Nonce == rb.Nonce || ra.Version != rb.Version || len(ra.Resources) != 3 || len(rb.Resources) != 3 {
		t.Fatalf("first syncs: a %s/%s %d resources, b %s/%s %d", ra.Version, ra.Nonce, len(ra.Resources),
			rb.Version, rb.Nonce, len(rb.Resources))
	}
	h.srv.mu.Lock()
	g := h.srv.groups[groupKey([]string{"ns/gw0"})]
	h.srv.mu.Unlock()
	if g == nil || g.view.Load().full.b == nil {
		t.Fatal("the group's first sync was not encoded once for both")
	}
	for _, c := range []struct {
		cl *client
		r  *pb.Response
	}{{a, ra}, {b, rb}} {
		c.cl.send(&pb.Request{Version: c.r.Version, ResponseNonce: c.r.Nonce})
	}
	h.waitStatus("b", func(p ProxyStatus) bool { return p.AckedVersion == rb.Version })
	h.srv.Update(fleetConfig(1, 2, "-x"), nil)
	da, db := a.recv(), b.recv()
	if len(da.Resources) != 1 || len(db.Resources) != 1 || da.Nonce == db.Nonce || da.Nonce == ra.Nonce {
		t.Fatalf("delta: a %d resources nonce %s, b %d nonce %s", len(da.Resources), da.Nonce, len(db.Resources), db.Nonce)
	}
}
