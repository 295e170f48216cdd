package gateway

import (
	"net/netip"
	"sort"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// pool hands out one address per Gateway that has no spec.addresses, so
// that Gateways sharing a port (three on :80 in the conformance suite) each
// bind their own socket. An allocation lasts as long as its Gateway.
type pool struct {
	free  []netip.Addr          // in order, lowest first
	given map[string]netip.Addr // "namespace/name" → address
}

func newPool(addrs []netip.Addr) *pool {
	p := &pool{free: append([]netip.Addr(nil), addrs...), given: map[string]netip.Addr{}}
	sort.Slice(p.free, func(i, j int) bool { return p.free[i].Less(p.free[j]) })
	return p
}

// assign releases the addresses of Gateways no longer in gws, allocates one
// to each new Gateway without spec.addresses (oldest first, so that a
// restart tends to give the same ones), and returns the allocation. A
// Gateway that finds the pool empty gets none.
func (p *pool) assign(gws []*gwv1.Gateway) map[string]string {
	want := map[string]bool{}
	var fresh []*gwv1.Gateway
	for _, gw := range gws {
		if len(gw.Spec.Addresses) > 0 {
			continue
		}
		key := gw.Namespace + "/" + gw.Name
		want[key] = true
		if _, ok := p.given[key]; !ok {
			fresh = append(fresh, gw)
		}
	}
	for key, a := range p.given {
		if !want[key] {
			delete(p.given, key)
			p.free = append(p.free, a)
		}
	}
	sort.Slice(p.free, func(i, j int) bool { return p.free[i].Less(p.free[j]) })
	sort.SliceStable(fresh, func(i, j int) bool {
		a, b := fresh[i], fresh[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	for _, gw := range fresh {
		if len(p.free) == 0 {
			break
		}
		p.given[gw.Namespace+"/"+gw.Name] = p.free[0]
		p.free = p.free[1:]
	}
	out := make(map[string]string, len(p.given))
	for k, a := range p.given {
		out[k] = a.String()
	}
	return out
}
