package gateway

import (
	"net/netip"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func gw(name string, age time.Duration, spec ...string) *gwv1.Gateway {
	g := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name,
		CreationTimestamp: metav1.NewTime(time.Unix(1000, 0).Add(-age))}}
	for _, a := range spec {
		g.Spec.Addresses = append(g.Spec.Addresses, gwv1.GatewaySpecAddress{Value: a})
	}
	return g
}

func TestPoolStableOldestFirstAndReleases(t *testing.T) {
	p := newPool([]netip.Addr{netip.MustParseAddr("127.0.2.2"), netip.MustParseAddr("127.0.2.1")})
	got := p.assign([]*gwv1.Gateway{gw("young", 1*time.Second), gw("old", 10*time.Second), gw("fixed", 20*time.Second, "127.0.0.9")})
	if got["ns/old"] != "127.0.2.1" || got["ns/young"] != "127.0.2.2" || len(got) != 2 {
		t.Fatalf("allocation = %v; want the oldest Gateway on the lowest address, none for spec.addresses", got)
	}
	// A third Gateway finds the pool empty.
	got = p.assign([]*gwv1.Gateway{gw("young", time.Second), gw("old", 10*time.Second), gw("third", 0)})
	if _, ok := got["ns/third"]; ok || got["ns/young"] != "127.0.2.2" {
		t.Fatalf("allocation = %v; want existing ones kept and none for the third", got)
	}
	// "old" goes away: its address is free for "third".
	got = p.assign([]*gwv1.Gateway{gw("young", time.Second), gw("third", 0)})
	if got["ns/third"] != "127.0.2.1" || got["ns/young"] != "127.0.2.2" {
		t.Fatalf("allocation = %v; want the released address reused", got)
	}
}
