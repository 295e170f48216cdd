package controlplane

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const classYAML = `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: causeway}
spec: {controllerName: causeway.dev/gateway-controller}
`

func gatewayYAML(name string, ports ...int) string {
	s := fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: %s, namespace: default}
spec:
  gatewayClassName: causeway
  listeners:
`, name)
	for i, p := range ports {
		s += fmt.Sprintf("  - {name: http%d, protocol: HTTP, port: %d}\n", i, p)
	}
	return s
}

func routeYAML(name, gateway string, paths ...string) string {
	s := fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: %s, namespace: default}
spec:
  parentRefs: [{name: %s}]
  rules:
`, name, gateway)
	for _, p := range paths {
		s += fmt.Sprintf("  - matches: [{path: {type: PathPrefix, value: %s}}]\n    backendRefs: [{group: causeway.dev, kind: Backend, name: be}]\n", p)
	}
	return s
}

// fleet is one control plane and three proxies: p1 and p2 serve
// default/gw-a on 127.0.0.2 and 127.0.0.3, p3 serves default/gw-b on
// 127.0.0.4.
type fleet struct {
	t              *testing.T
	dir            string
	cpArgs         []string
	cp             *process
	cpAdmin        string
	grpcAddr, ca   string
	portA, portB   int
	proxyAdmin     map[string]string
	proxyIP        map[string]string
	backendReached atomic.Int64
}

func newFleet(t *testing.T) *fleet {
	f := &fleet{t: t, dir: t.TempDir(), proxyAdmin: map[string]string{},
		proxyIP: map[string]string{"p1": "127.0.0.2", "p2": "127.0.0.3", "p3": "127.0.0.4"}}
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.backendReached.Add(1)
		fmt.Fprintf(w, "backend %s", r.URL.Path)
	}))
	t.Cleanup(be.Close)
	host, port, _ := net.SplitHostPort(be.Listener.Addr().String())

	cfg := filepath.Join(f.dir, "config")
	if err := os.Mkdir(cfg, 0o755); err != nil {
		t.Fatal(err)
	}
	f.portA, f.portB = freePort(t, "127.0.0.2"), freePort(t, "127.0.0.4")
	writeFile(t, cfg, "class.yaml", classYAML)
	writeFile(t, cfg, "gw-a.yaml", gatewayYAML("gw-a", f.portA))
	writeFile(t, cfg, "gw-b.yaml", gatewayYAML("gw-b", f.portB))
	writeFile(t, cfg, "backend.yaml", fmt.Sprintf(`apiVersion: causeway.dev/v1alpha1
kind: Backend
metadata: {name: be, namespace: default}
spec:
  endpoints: [{ip: {address: %s, port: %s}}]
`, host, port))
	writeFile(t, cfg, "route-a.yaml", routeYAML("route-a", "gw-a", "/a"))
	writeFile(t, cfg, "route-b.yaml", routeYAML("route-b", "gw-b", "/b"))
	tokens := filepath.Join(f.dir, "tokens")
	if err := os.WriteFile(tokens, []byte("tok-a default/gw-a\ntok-b default/*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The control plane makes its CA here on first start and keeps it
	// across the restart below.
	tlsDir := filepath.Join(f.dir, "tls")
	ca := filepath.Join(tlsDir, "ca.pem")
	grpcAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
	f.grpcAddr, f.ca = grpcAddr, ca
	f.cpAdmin = fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
	f.cpArgs = []string{"control", "--config", cfg, "--listen", grpcAddr, "--admin-addr", f.cpAdmin,
		"--tokens", tokens, "--tls-dir", tlsDir, "--debounce", "50ms"}
	f.startControl()

	for id, gw := range map[string]string{"p1": "default/gw-a", "p2": "default/gw-a", "p3": "default/gw-b"} {
		admin := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
		tok := "tok-a"
		if id == "p3" {
			tok = "tok-b"
		}
		p := start(t, id, "proxy", "--control", grpcAddr, "--id", id, "--gateways", gw, "--token", tok,
			"--ca", ca, "--listen-address", f.proxyIP[id], "--admin-addr", admin, "--access-log", "off",
			"--reconnect-max", "500ms", "--drain-timeout", "2s")
		f.proxyAdmin[id] = admin
		waitReady(t, p, admin)
	}
	f.waitSynced()
	return f
}

func (f *fleet) startControl() {
	f.cp = start(f.t, "control", f.cpArgs...)
	waitReady(f.t, f.cp, f.cpAdmin)
}

// waitSynced waits until the three proxies are connected and in sync.
func (f *fleet) waitSynced() map[string]string {
	f.t.Helper()
	acked := map[string]string{}
	eventually(f.t, "three proxies in sync", 15*time.Second, func() bool {
		st := fleetStatus(f.t, f.cpAdmin)
		for _, id := range []string{"p1", "p2", "p3"} {
			if p, ok := st[id]; !ok || !synced(p) {
				return false
			}
			acked[id] = st[id].AckedVersion
		}
		return len(st) == 3
	})
	return acked
}

// url is the address of a Gateway's listener on one proxy.
func (f *fleet) url(id string, port int, path string) (string, string) {
	return fmt.Sprintf("%s:%d", f.proxyIP[id], port), path
}

func (f *fleet) status(id string, port int, path string) int {
	code, _ := get(f.url(id, port, path))
	return code
}

func TestFleet(t *testing.T) {
	f := newFleet(t)
	cfg := filepath.Join(f.dir, "config")
	for id, port := range map[string]int{"p1": f.portA, "p2": f.portA, "p3": f.portB} {
		path := "/a"
		if id == "p3" {
			path = "/b"
		}
		if code := f.status(id, port, path); code != http.StatusOK {
			t.Fatalf("%s %s: %d", id, path, code)
		}
	}

	t.Run("route change reaches exactly the proxies concerned", func(t *testing.T) {
		before := map[string]string{}
		for id, admin := range f.proxyAdmin {
			before[id] = configVersion(t, admin)
		}
		if code := f.status("p1", f.portA, "/new"); code != http.StatusNotFound {
			t.Fatalf("/new before the change: %d", code)
		}
		written := time.Now()
		writeFile(t, cfg, "route-a.yaml", routeYAML("route-a", "gw-a", "/a", "/new"))
		for _, id := range []string{"p1", "p2"} {
			eventually(t, id+" serves /new", 5*time.Second, func() bool { return f.status(id, f.portA, "/new") == http.StatusOK })
		}
		took := time.Since(written)
		t.Logf("route change to traffic on both proxies: %v", took)
		if took > time.Second {
			t.Errorf("traffic followed after %v, want within 1s", took)
		}
		acked := f.waitSynced()
		for _, id := range []string{"p1", "p2"} {
			if v := configVersion(t, f.proxyAdmin[id]); v == before[id] || v != acked[id] {
				t.Errorf("%s serves version %s (before %s, acked %s)", id, v, before[id], acked[id])
			}
		}
		if v := configVersion(t, f.proxyAdmin["p3"]); v != before["p3"] {
			t.Errorf("p3 (gw-b) changed version %s -> %s for a gw-a route", before["p3"], v)
		}
		if code := f.status("p3", f.portB, "/new"); code != http.StatusNotFound {
			t.Errorf("p3 serves /new: %d", code)
		}
	})

	t.Run("a configuration one proxy cannot apply is NACKed", func(t *testing.T) {
		// Occupy a port on p2's address only: the new Gateway listener
		// binds on p1 and fails on p2.
		portX := freePort(t, "127.0.0.2")
		occupied, err := net.Listen("tcp", fmt.Sprintf("127.0.0.3:%d", portX))
		if err != nil {
			t.Fatal(err)
		}
		defer occupied.Close()
		before := f.waitSynced()
		writeFile(t, cfg, "gw-a.yaml", gatewayYAML("gw-a", f.portA, portX))

		var table string
		eventually(t, "p2's NACK in proxy-status", 10*time.Second, func() bool {
			table = ctl(t, f.cpAdmin)
			return strings.Contains(row(table, "p2"), "NACKED") && strings.Contains(row(table, "p1"), "SYNCED")
		})
		t.Logf("proxy-status:\n%s", table)
		if r := row(table, "p2"); !strings.Contains(r, "bind") || !strings.Contains(r, before["p2"]) {
			t.Errorf("p2's row lacks the bind error or its last good version %s: %q", before["p2"], r)
		}
		if r := row(table, "p3"); !strings.Contains(r, "SYNCED") || !strings.Contains(r, before["p3"]) {
			t.Errorf("p3 disturbed: %q", r)
		}
		// One of gw-a's proxies runs the configuration: gw-a is Programmed.
		if c := programmed(t, f.cpAdmin, "default", "gw-a"); !c.Status || !strings.Contains(c.Message, "1 of 2") {
			t.Errorf("gw-a with p1 synced and p2 refusing: %+v", c)
		}
		if code := f.status("p1", portX, "/a"); code != http.StatusOK {
			t.Errorf("p1 on the new port: %d", code)
		}
		// p2 keeps serving its last good configuration.
		if v := configVersion(t, f.proxyAdmin["p2"]); v != before["p2"] {
			t.Errorf("p2 serves %s, want its last good %s", v, before["p2"])
		}
		if code := f.status("p2", f.portA, "/new"); code != http.StatusOK {
			t.Errorf("p2 stopped serving: %d", code)
		}
		// Once the port is free again and the change reverted, all agree.
		occupied.Close()
		writeFile(t, cfg, "gw-a.yaml", gatewayYAML("gw-a", f.portA))
		f.waitSynced()
		if r := row(ctl(t, f.cpAdmin), "p2"); !strings.Contains(r, "SYNCED") {
			t.Errorf("p2 after revert: %q", r)
		}
	})

	t.Run("a token serves only the Gateways it allows", func(t *testing.T) {
		admin := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
		p := start(t, "intruder", "proxy", "--control", f.grpcAddr, "--id", "intruder", "--gateways", "default/gw-b",
			"--token", "tok-a", "--ca", f.ca, "--listen-address", "127.0.0.5", "--admin-addr", admin,
			"--access-log", "off", "--reconnect-max", "500ms")
		eventually(t, "refusal logged", 10*time.Second, func() bool {
			return strings.Contains(p.stderr.String(), "PermissionDenied")
		})
		if code, _ := get(admin, "/ready"); code == http.StatusOK {
			t.Error("a proxy with a token for gw-a is ready serving gw-b")
		}
		if _, listed := fleetStatus(t, f.cpAdmin)["intruder"]; listed {
			t.Error("refused proxy listed in the status table")
		}
		p.stop()
	})

	t.Run("control plane killed under load", func(t *testing.T) {
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var ok, failed atomic.Int64
		var firstErr atomic.Value
		for _, tgt := range []struct {
			id   string
			port int
			path string
		}{{"p1", f.portA, "/a"}, {"p2", f.portA, "/new"}, {"p3", f.portB, "/b"}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Bounded: at most 20,000 requests, and until stop.
				for i := 0; i < 20000 && ctx.Err() == nil; i++ {
					code, body := get(f.url(tgt.id, tgt.port, tgt.path))
					if code == http.StatusOK {
						ok.Add(1)
					} else {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%s %s: %d %s", tgt.id, tgt.path, code, body))
					}
					time.Sleep(2 * time.Millisecond)
				}
			}()
		}
		before := f.waitSynced()
		f.cp.kill()
		// The proxies keep serving while it is gone.
		down := ok.Load()
		eventually(t, "requests served with the control plane down", 10*time.Second, func() bool {
			return ok.Load() > down+300
		})
		f.startControl()
		after := f.waitSynced()
		for id, v := range before {
			if after[id] != v {
				t.Errorf("%s resumed at %s, want unchanged %s", id, after[id], v)
			}
		}
		writeFile(t, cfg, "route-a.yaml", routeYAML("route-a", "gw-a", "/a", "/new", "/after"))
		for _, id := range []string{"p1", "p2"} {
			eventually(t, id+" serves /after", 5*time.Second, func() bool { return f.status(id, f.portA, "/after") == http.StatusOK })
		}
		stop()
		wg.Wait()
		t.Logf("under load: %d requests served, %d failed", ok.Load(), failed.Load())
		if failed.Load() != 0 {
			t.Errorf("%d failed requests; first: %v", failed.Load(), firstErr.Load())
		}
		if ok.Load() < 300 {
			t.Errorf("only %d requests served", ok.Load())
		}
	})
}
