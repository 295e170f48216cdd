package gateway

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/proxy"
	"causeway.dev/causeway/internal/status"
)

// A socket on an address this host does not have is AddressNotUsable (the
// Gateway's spec.addresses); one whose port is taken is PortUnavailable.
func TestMarkUnboundReasons(t *testing.T) {
	// Real bind errors, from the kernel.
	_, notHere := net.Listen("tcp", "192.0.2.10:0") // TEST-NET-1, on no interface
	if notHere == nil {
		t.Fatal("192.0.2.10 is bindable here; the test needs an address the host lacks")
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, inUse := net.Listen("tcp", taken.Addr().String())
	if inUse == nil {
		t.Fatal("second bind of a port succeeded")
	}
	cfg := &ir.Config{Listeners: []*ir.Listener{
		{Name: "192.0.2.10:80", Gateways: []string{"ns/away"}},
		{Name: taken.Addr().String(), Gateways: []string{"ns/busy"}},
	}}
	be := &proxy.BindError{Failed: map[string]error{
		"192.0.2.10:80":       fmt.Errorf("listen: %w", notHere),
		taken.Addr().String(): fmt.Errorf("listen: %w", inUse),
	}}
	r := &status.Report{}
	markUnbound(r, cfg, be)
	for gw, want := range map[string]string{"away": status.ReasonAddressNotUsable, "busy": status.ReasonPortUnavailable} {
		e := r.For(status.Ref{Kind: "Gateway", Namespace: "ns", Name: gw}, status.Source{})
		if len(e.Conditions) != 1 || e.Conditions[0].Type != status.Programmed || e.Conditions[0].Status || e.Conditions[0].Reason != want {
			t.Errorf("Gateway %s: conditions %+v, want Programmed=False %s", gw, e.Conditions, want)
		}
	}
	if !errors.Is(notHere, syscall.EADDRNOTAVAIL) {
		t.Errorf("bind on a foreign address gave %v, not EADDRNOTAVAIL", notHere)
	}
}
