package push

import (
	"math/rand/v2"
	"strings"
	"testing"

	pb "causeway.dev/causeway/api/push/v1alpha1"
	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
	"causeway.dev/causeway/internal/translate"
)

func TestMergeSumsReplicas(t *testing.T) {
	cur := map[string]string{"ns/a": "v2", "ns/b": "w1"}
	replicaA := map[string]GatewayFleet{
		"ns/a": {Version: "v2", Proxies: 2, Acked: 1, Nacked: 1, Nack: "zzz: cannot bind"},
		"ns/b": {Version: "w1", Proxies: 1, Acked: 1},
	}
	replicaB := map[string]GatewayFleet{
		"ns/a": {Version: "v2", Proxies: 1, Nacked: 1, Nack: "aaa: cannot bind"},
	}
	// A replica still at v1 of ns/a: its proxies count as connected, in
	// flight.
	lagging := map[string]GatewayFleet{"ns/a": {Version: "v1", Proxies: 3, Acked: 3}}

	got := Merge(cur, replicaA, replicaB, lagging)
	want := map[string]GatewayFleet{
		"ns/a": {Version: "v2", Proxies: 6, Acked: 1, Nacked: 2, Nack: "aaa: cannot bind"},
		"ns/b": {Version: "w1", Proxies: 1, Acked: 1},
	}
	if len(got) != len(want) || got["ns/a"] != want["ns/a"] || got["ns/b"] != want["ns/b"] {
		t.Fatalf("Merge:\n got %+v\nwant %+v", got, want)
	}
	// Every order gives the same result, hence the same condition.
	for _, order := range [][]map[string]GatewayFleet{{lagging, replicaB, replicaA}, {replicaB, lagging, replicaA}} {
		if o := Merge(cur, order...); o["ns/a"] != got["ns/a"] || o["ns/b"] != got["ns/b"] {
			t.Fatalf("Merge depends on order: %+v vs %+v", o, got)
		}
	}
	if c := Programmed(got["ns/a"]); !c.Status || c.Message != "1 of 6 connected proxies run the current configuration" {
		t.Fatalf("Programmed of the merge: %+v", c)
	}

	// Every connected proxy refused: Invalid, with the same refusal
	// whichever replica computes it.
	allNack := Merge(cur, map[string]GatewayFleet{"ns/a": {Version: "v2", Proxies: 1, Nacked: 1, Nack: "b"}},
		map[string]GatewayFleet{"ns/a": {Version: "v2", Proxies: 1, Nacked: 1, Nack: "a"}})
	if c := Programmed(allNack["ns/a"]); c.Status || c.Reason != status.ReasonInvalid || !strings.HasSuffix(c.Message, ": a") {
		t.Fatalf("all refused: %+v", c)
	}
	// No replica has proxies: absent, hence NoProxies.
	if none := Merge(cur, nil, map[string]GatewayFleet{}); len(none) != 0 {
		t.Fatalf("Merge of empty fleets: %+v", none)
	}
	if c := Programmed(Merge(cur)["ns/a"]); c.Reason != ReasonNoProxies {
		t.Fatalf("no fleet: %+v", c)
	}
	// A replica that has streamed nothing yet takes the others' word.
	if m := Merge(nil, replicaA); m["ns/b"].Acked != 1 || m["ns/a"].Acked != 1 {
		t.Fatalf("Merge before the first configuration: %+v", m)
	}
}

func TestFleetReportsGatewayVersions(t *testing.T) {
	h := newHarness(t, -1)
	h.srv.Update(fleetConfig(2, 1, ""), nil)
	waitFor(t, "the configuration published", func() bool { return h.srv.GatewayVersions() != nil })
	vers := h.srv.GatewayVersions()
	if vers["ns/gw0"] == "" || vers["ns/gw1"] == "" || vers["ns/gw0"] == vers["ns/gw1"] {
		t.Fatalf("gateway versions %v", vers)
	}
	for _, id := range []string{"a", "b"} {
		cl := h.connect(&pb.Request{Node: node(id, "ns/gw0")})
		r := cl.recv()
		cl.send(&pb.Request{ResponseNonce: r.Nonce, ErrorDetail: &pb.Status{Message: "refused by " + id}})
		h.waitStatus(id, func(p ProxyStatus) bool { return p.LastNack != nil })
	}
	f := h.srv.Fleet()["ns/gw0"]
	// The least refusal, whatever the order of the connections.
	if f.Version != vers["ns/gw0"] || f.Proxies != 2 || f.Nacked != 2 || f.Nack != "refused by a" {
		t.Fatalf("fleet of ns/gw0: %+v", f)
	}

}

// TestReplicasAgreeOnVersions translates the same resources, read in
// different orders (as two replicas' caches list them), and requires the
// same version of each Gateway: what Merge compares across replicas.
func TestReplicasAgreeOnVersions(t *testing.T) {
	docs := []string{`apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: causeway}
spec: {controllerName: ` + translate.ControllerName + `}`}
	for _, gw := range []string{"a", "b", "c"} {
		docs = append(docs, `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: `+gw+`, namespace: ns}
spec:
  gatewayClassName: causeway
  listeners: [{name: http, port: 8080, protocol: HTTP, hostname: `+gw+`.example}]`)
		for _, r := range []string{"r1", "r2"} {
			docs = append(docs, `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: `+gw+`-`+r+`, namespace: ns}
spec:
  parentRefs: [{name: `+gw+`}]
  rules: [{matches: [{path: {type: PathPrefix, value: /`+r+`}}], backendRefs: [{name: svc-`+r+`, port: 80}]}]`)
		}
	}
	for _, svc := range []string{"svc-r1", "svc-r2"} {
		docs = append(docs, `apiVersion: v1
kind: Service
metadata: {name: `+svc+`, namespace: ns}
spec: {ports: [{port: 80}], clusterIP: 10.0.0.1}`)
	}
	versions := func(order []string) map[string]string {
		snap := resource.New()
		for i, d := range order {
			snap.Decode("f"+string(rune('a'+i))+".yaml", []byte(d))
		}
		cfg, _ := translate.Translate(snap, translate.Options{})
		s, err := newSnapshot(cfg, nil, SecretOwners(snap))
		if err != nil {
			t.Fatal(err)
		}
		return s.gateways
	}
	want := versions(docs)
	if len(want) != 3 {
		t.Fatalf("versions of %d Gateways, want 3: %v", len(want), want)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		shuffled := append([]string(nil), docs...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got := versions(shuffled)
		for g, v := range want {
			if got[g] != v {
				t.Fatalf("%s: version %s from one order, %s from another", g, v, got[g])
			}
		}
	}
}

func TestMergeStatus(t *testing.T) {
	a := StatusReport{Version: "v1", Proxies: []ProxyStatus{{ID: "p2", Control: "A"}, {ID: "p1", Control: "A"}}}
	b := StatusReport{Version: "v1", Proxies: []ProxyStatus{{ID: "p1", Control: "B"}}}
	m := MergeStatus(a, b)
	var got []string
	for _, p := range m.Proxies {
		got = append(got, p.ID+"@"+p.Control)
	}
	if m.Version != "v1" || strings.Join(got, " ") != "p1@A p1@B p2@A" {
		t.Fatalf("merged: %s %v", m.Version, got)
	}
	if m := MergeStatus(a, StatusReport{Version: "v2"}); m.Version != "" || len(m.Proxies) != 2 {
		t.Fatalf("merged versions differ: %+v", m)
	}
}
