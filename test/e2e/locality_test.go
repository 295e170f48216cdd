package e2e

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestLocalityFailover: a gateway started with --zone zone-a sends all
// traffic to the endpoint of its zone, moves to the other zone when that
// endpoint fails its health checks, and comes back when it heals.
func TestLocalityFailover(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	localAddr := ln.Addr().String()
	serveLocal := func(ln net.Listener) *http.Server {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Backend", "local")
		})}
		go srv.Serve(ln)
		return srv
	}
	local := serveLocal(ln)
	t.Cleanup(func() { local.Close() })
	remote := backend(t, "remote", nil)
	lhost, lport, _ := net.SplitHostPort(localAddr)
	rhost, rport, _ := net.SplitHostPort(remote)
	port := freePort(t)
	dir := t.TempDir()
	writeFile(t, dir, "all.yaml", gatewayYAML(port)+fmt.Sprintf(`---
apiVersion: causeway.dev/v1alpha1
kind: Backend
metadata: {name: app}
spec:
  endpoints:
  - {ip: {address: %s, port: %s}, zone: zone-a, region: r1}
  - {ip: {address: %s, port: %s}, zone: zone-b, region: r1}
---
apiVersion: causeway.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: health}
spec:
  targetRefs: [{group: causeway.dev, kind: Backend, name: app}]
  healthCheck:
    active: {tcp: {}, interval: 100ms, timeout: 100ms, unhealthyThreshold: 1, healthyThreshold: 1}
`, lhost, lport, rhost, rport)+"---\n"+routeYAML("r", "app", "/"))
	startGateway(t, dir, "--access-log", "off", "--zone", "zone-a", "--region", "r1")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	servedBy := func() map[string]int {
		n := map[string]int{}
		for range 40 {
			resp, _ := get(t, url)
			n[resp.Header.Get("X-Backend")]++
		}
		return n
	}
	if n := servedBy(); n["local"] != 40 {
		t.Fatalf("with both healthy: %v, want all 40 in the gateway's zone", n)
	}
	local.Close()
	waitFor(t, "failover to zone-b", func() bool { return servedBy()["remote"] == 40 })

	// The local endpoint heals on the same address.
	ln2, err := net.Listen("tcp", localAddr)
	if err != nil {
		t.Fatalf("rebinding %s: %v", localAddr, err)
	}
	healed := serveLocal(ln2)
	t.Cleanup(func() { healed.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if servedBy()["local"] == 40 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("traffic did not come back to zone-a: %v", servedBy())
}
