package kube

import (
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestHandlerFiltersOnlyGatewayAPIStatusWrites(t *testing.T) {
	pokes := 0
	poke := func() { pokes++ }
	meta := func(rv string, gen int64) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "x", ResourceVersion: rv, Generation: gen}
	}
	gw := handler(poke, true)
	gw.OnUpdate(&gwv1.Gateway{ObjectMeta: meta("1", 1)}, &gwv1.Gateway{ObjectMeta: meta("2", 1)})
	if pokes != 0 {
		t.Fatalf("a Gateway status write poked")
	}
	gw.OnUpdate(&gwv1.Gateway{ObjectMeta: meta("2", 1)}, &gwv1.Gateway{ObjectMeta: meta("3", 2)})
	if pokes != 1 {
		t.Fatalf("a Gateway spec change did not poke")
	}
	// Endpoints turning ready keep the slice's generation: still a change.
	es := handler(poke, false)
	es.OnUpdate(&discoveryv1.EndpointSlice{ObjectMeta: meta("5", 1)}, &discoveryv1.EndpointSlice{ObjectMeta: meta("6", 1)})
	if pokes != 2 {
		t.Fatalf("an EndpointSlice update did not poke")
	}
	es.OnUpdate(&discoveryv1.EndpointSlice{ObjectMeta: meta("6", 1)}, &discoveryv1.EndpointSlice{ObjectMeta: meta("6", 1)})
	if pokes != 2 {
		t.Fatalf("a resync poked")
	}
}
