package agent

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	pb "causeway.dev/causeway/api/push/v1alpha1"
	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/push"
)

func config(path string, certKey string) *ir.Config {
	cfg := &ir.Config{
		Listeners: []*ir.Listener{{Name: "l0", Address: "127.0.0.1", Port: 8443, Protocol: ir.ProtocolHTTPS,
			Gateways: []string{"ns/gw0"},
			TLS:      &ir.TLS{Certificates: []*ir.Certificate{{CertPEM: []byte("cert"), KeyPEM: []byte(certKey)}}},
			VirtualHosts: []*ir.VirtualHost{{Domain: "*", Routes: []*ir.Route{{Name: "r",
				Match: ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: path}}, Backends: []*ir.Backend{{Cluster: "c0", Weight: 1}}}}}}},
			{Name: "l1", Port: 9000, Protocol: ir.ProtocolHTTP, Gateways: []string{"ns/other"}}},
		Clusters: []*ir.Cluster{{Name: "c0", Endpoints: []ir.Endpoint{{Address: "127.0.0.1:1"}}}, {Name: "c9"}},
	}
	cfg.Finalize()
	return cfg
}

// server runs a push.Server on a loopback socket; stop ends it.
func server(t *testing.T, srv *push.Server) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(push.ServerOptions()...)
	srv.Register(g)
	go func() { _ = g.Serve(ln) }()
	return ln.Addr().String(), g.Stop
}

// recorder is an Apply that records configurations and refuses those
// whose route path contains "refuse".
type recorder struct {
	mu      sync.Mutex
	applied []*ir.Config
	serving *ir.Config
	ch      chan *ir.Config
}

func (r *recorder) apply(cfg *ir.Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applied = append(r.applied, cfg)
	for _, l := range cfg.Listeners {
		for _, vh := range l.VirtualHosts {
			for _, rt := range vh.Routes {
				if strings.Contains(rt.Match.Path.Value, "refuse") {
					r.serving = nil // as a partly applied configuration would
					return errors.New("route feature not supported")
				}
			}
		}
	}
	r.serving = cfg
	select {
	case r.ch <- cfg:
	default:
	}
	return nil
}

func (r *recorder) current() *ir.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.serving
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// replica is one control-plane replica on a loopback socket.
type replica struct {
	srv  *push.Server
	addr string
	stop func()
}

func TestAgentAppliesNacksAndFailsOver(t *testing.T) {
	tok, _ := push.ParseTokens(strings.NewReader("tok ns/*\n"))
	var reps []*replica
	for range 2 {
		srv := push.NewServer(push.Options{Tokens: tok, Debounce: -1, Logger: slog.New(slog.DiscardHandler)})
		defer srv.Close()
		addr, stop := server(t, srv)
		defer stop()
		reps = append(reps, &replica{srv: srv, addr: addr, stop: stop})
	}
	// Both replicas read the same source.
	update := func(cfg *ir.Config) {
		for _, r := range reps {
			r.srv.Update(cfg, nil)
		}
	}
	update(config("/a", "key1"))

	// A dead address among them: the agent must skip it.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()

	rec := &recorder{ch: make(chan *ir.Config, 16)}
	ag, err := New(Options{Addrs: []string{deadAddr, reps[0].addr, reps[1].addr}, Apply: rec.apply, ListenAddress: "127.0.0.9",
		Node:   &pb.Node{Id: "p0", Role: "gateway", Gateways: []string{"ns/gw0"}, Token: "tok"},
		Logger: slog.New(slog.DiscardHandler), BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ag.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "first configuration", func() bool { return rec.current() != nil })
	cfg := rec.current()
	if len(cfg.Listeners) != 1 || cfg.Listeners[0].Name != "l0" || len(cfg.Clusters) != 1 || cfg.Clusters[0].Name != "c0" {
		t.Fatalf("assembled config: %d listeners, %d clusters", len(cfg.Listeners), len(cfg.Clusters))
	}
	if cfg.Listeners[0].Address != "127.0.0.9" || string(cfg.Listeners[0].TLS.Certificates[0].KeyPEM) != "key1" {
		t.Fatalf("listener: %+v", cfg.Listeners[0])
	}
	connected := func() (*replica, *replica) {
		for i, r := range reps {
			if r.addr == ag.Connected() {
				return r, reps[1-i]
			}
		}
		t.Fatalf("connected to %q", ag.Connected())
		return nil, nil
	}
	proxyOn := func(r *replica) (push.ProxyStatus, bool) {
		s := r.srv.Status().Proxies
		if len(s) != 1 {
			return push.ProxyStatus{}, false
		}
		return s[0], true
	}
	cur, other := connected()
	waitFor(t, "ack", func() bool {
		p, ok := proxyOn(cur)
		return ok && p.AckedVersion == ag.Version() && ag.Version() != ""
	})
	good := ag.Version()

	// A configuration the proxy refuses: NACKed, and the last good one is
	// applied again.
	update(config("/refuse", "key1"))
	waitFor(t, "nack", func() bool { p, ok := proxyOn(cur); return ok && p.LastNack != nil })
	if p, _ := proxyOn(cur); p.AckedVersion != good || !strings.Contains(p.LastNack.Message, "not supported") {
		t.Fatalf("after NACK: %+v", p)
	}
	waitFor(t, "last good re-applied", func() bool { c := rec.current(); return c != nil && c.Version == good })

	// Failover: the replica dies, the other takes over and the agent
	// resumes on it, applying nothing new.
	update(config("/a", "key1"))
	waitFor(t, "back to good", func() bool { p, ok := proxyOn(cur); return ok && p.LastNack == nil && p.AckedVersion == good })
	rec.mu.Lock()
	nApplied := len(rec.applied)
	rec.mu.Unlock()
	cur.stop()
	waitFor(t, "resumed on the other replica", func() bool {
		p, ok := proxyOn(other)
		return ok && p.AckedVersion == good
	})
	rec.mu.Lock()
	if len(rec.applied) != nApplied {
		t.Fatalf("resuming on an unchanged replica applied %d configurations", len(rec.applied)-nApplied)
	}
	rec.mu.Unlock()

	// A key rotation reaches the proxy through the new replica.
	update(config("/a", "key2"))
	waitFor(t, "rotated key", func() bool {
		c := rec.current()
		return c != nil && string(c.Listeners[0].TLS.Certificates[0].KeyPEM) == "key2"
	})
	if ag.Connected() != other.addr {
		t.Fatalf("connected to %q, want %q", ag.Connected(), other.addr)
	}
}
