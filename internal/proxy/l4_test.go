package proxy

import (
	"io"
	"net"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/l4"
	"causeway.dev/causeway/internal/upstream"
)

// TestL4Listeners: TCP and UDP listeners are bound by Apply, kept (same
// socket) by a later Apply that keeps their name, and closed when removed.
// TCP connections go to the route's cluster when upstream clusters can
// dial (l4.Dialer), and are refused otherwise.
func TestL4Listeners(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	e := newEnv(t, Options{})
	cfg := func(idle time.Duration) *ir.Config {
		route := &ir.L4Route{Name: "tcproute/default/echo/rule/0", IdleTimeout: ir.Duration(idle),
			Backends: []*ir.Backend{{Cluster: "echo", Weight: 1, Name: "echo"}}}
		return &ir.Config{
			Listeners: []*ir.Listener{
				{Name: "tcp", Address: "127.0.0.1", Protocol: ir.ProtocolTCP, L4Routes: []*ir.L4Route{route}},
				{Name: "udp", Address: "127.0.0.1", Protocol: ir.ProtocolUDP, L4Routes: []*ir.L4Route{route}},
				{Name: "tls", Address: "127.0.0.1", Protocol: ir.ProtocolTLS, L4Routes: []*ir.L4Route{route}},
			},
			Clusters: []*ir.Cluster{{Name: "echo", Protocol: ir.UpstreamHTTP1, Endpoints: []ir.Endpoint{{Address: echo.Addr().String()}}}},
		}
	}
	e.apply(cfg(0))
	tcp := e.p.Addr("tcp").String()
	if e.p.Addr("udp") == nil || e.p.Addr("tls") == nil {
		t.Fatal("UDP or TLS listener not bound")
	}
	if _, ok := e.p.Addr("udp").(*net.UDPAddr); !ok {
		t.Fatalf("udp listener bound as %T", e.p.Addr("udp"))
	}
	e.apply(cfg(time.Minute))
	if got := e.p.Addr("tcp").String(); got != tcp {
		t.Fatalf("kept TCP listener rebound: %s, was %s", got, tcp)
	}

	c, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "ping")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4)
	n, err := io.ReadFull(c, buf)
	if _, dials := any(&upstream.Cluster{}).(l4.Dialer); dials {
		if err != nil || string(buf) != "ping" {
			t.Fatalf("through the TCP listener: %q, %v", buf[:n], err)
		}
	} else if n != 0 || err == nil {
		t.Fatalf("upstream clusters cannot dial yet, so the connection must be refused; got %q, %v", buf[:n], err)
	}

	// A bad L4 listener is refused as a whole.
	bad := cfg(0)
	bad.Listeners[0].L4Routes[0].Backends[0].Cluster = "nope"
	if err := e.p.Apply(bad); err == nil {
		t.Fatal("unknown cluster in an L4 route accepted")
	}

	c.Close()
	none := cfg(0)
	none.Listeners = none.Listeners[1:]
	e.apply(none)
	if e.p.Addr("tcp") != nil {
		t.Fatal("removed TCP listener still reported")
	}
	waitRefused(t, tcp)
}
