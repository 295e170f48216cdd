package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
)

func TestDialContext(t *testing.T) {
	checkLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	dead := refusedAddr(t)
	ev := make(events, 10)
	ic := h1Cluster("c", dead, ln.Addr().String())
	ic.Outlier = &ir.OutlierDetection{ConsecutiveLocalOriginFailures: 1, BaseEjectionTime: ir.Duration(time.Minute), MaxEjectionPercent: 50}
	ic.CircuitBreaker = &ir.CircuitBreaker{MaxRequests: 1}
	m := newManager(t, Options{OnEndpointEvent: ev.hook}, ic)
	c := m.Cluster("c")
	for range 2 {
		nc, addr, err := c.DialContext(context.Background())
		if err != nil || addr != ln.Addr().String() {
			t.Fatalf("dial: %s %v", addr, err)
		}
		if _, _, err := c.DialContext(context.Background()); !errors.Is(err, ErrOverflow) {
			t.Errorf("second connection: %v, want ErrOverflow", err)
		}
		io.WriteString(nc, "ping")
		buf := make([]byte, 4)
		if _, err := io.ReadFull(nc, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo %q %v", buf, err)
		}
		nc.Close()
	}
	ev.wait(t, "ejected "+dead) // the refused endpoint, tried first at some point, is out
	ok := false
	for range 10 {
		nc, _, err := c.DialContext(context.Background())
		if err == nil {
			nc.Close()
			ok = true
		}
	}
	if !ok {
		t.Error("no dial succeeded after the ejection")
	}
}
