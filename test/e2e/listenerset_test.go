package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"causeway.dev/causeway/test/testbin"
)

// TestListenerSet serves a ListenerSet's listeners with the built binary:
// one on its Gateway's port (told apart by hostname), one on a port of its
// own; routes reach a ListenerSet's listeners only through a parentRef
// naming it. When the Gateway stops allowing ListenerSets, their listeners
// go away on the next reload.
func TestListenerSet(t *testing.T) {
	v1 := backend(t, "v1", nil)
	v2 := backend(t, "v2", nil)
	port, own := freePort(t), freePort(t)
	dir := t.TempDir()
	gw := func(from string) string {
		return testbin.GatewayYAML("gw") + fmt.Sprintf(`  allowedListeners: {namespaces: {from: %s}}
  listeners:
  - {name: http, protocol: HTTP, port: %d, hostname: gw.example}
`, from, port)
	}
	writeFile(t, dir, "gateway.yaml", gw("Same"))
	writeFile(t, dir, "backends.yaml", backendYAML("v1", v1)+"---\n"+backendYAML("v2", v2))
	writeFile(t, dir, "listenerset.yaml", fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {name: team}
spec:
  parentRef: {name: gw}
  listeners:
  - {name: shared-port, protocol: HTTP, port: %d, hostname: ls.example}
  - {name: own-port, protocol: HTTP, port: %d}
  - {name: clash, protocol: HTTP, port: %d, hostname: gw.example}
`, port, own, port))
	writeFile(t, dir, "routes.yaml", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: gateway-route}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{group: causeway.dev, kind: Backend, name: v1}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: set-route}
spec:
  parentRefs: [{kind: ListenerSet, group: gateway.networking.k8s.io, name: team}]
  rules:
  - backendRefs: [{group: causeway.dev, kind: Backend, name: v2}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: section-route}
spec:
  parentRefs: [{kind: ListenerSet, name: team, sectionName: own-port}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /only-own}}]
    backendRefs: [{group: causeway.dev, kind: Backend, name: v1}]
`)
	g := startGateway(t, dir)
	shared := fmt.Sprintf("http://127.0.0.1:%d", port)
	ownURL := fmt.Sprintf("http://127.0.0.1:%d", own)

	cases := []struct {
		name, url, host string
		status          int
		backend         string
	}{
		{"gateway listener", shared + "/", "gw.example", 200, "v1"},
		{"set listener on the gateway's port", shared + "/", "ls.example", 200, "v2"},
		{"set listener on its own port", ownURL + "/x", "any.example", 200, "v2"},
		{"sectionName route on its listener", ownURL + "/only-own/y", "any.example", 200, "v1"},
		{"sectionName route not on the other listener", shared + "/only-own/y", "ls.example", 200, "v2"},
		{"unknown host", shared + "/", "other.example", 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := get(t, c.url, "Host", c.host)
			if resp.StatusCode != c.status || resp.Header.Get("X-Backend") != c.backend {
				t.Fatalf("got %d from %q, want %d from %q: %s", resp.StatusCode, resp.Header.Get("X-Backend"), c.status, c.backend, body)
			}
		})
	}

	// The status: the set is accepted, its clashing listener conflicted,
	// and each route's parents are the ones it names.
	var rep struct {
		Resources []struct {
			Ref        struct{ Kind, Namespace, Name string }
			Conditions []struct {
				Type, Reason string
				Status       bool
			}
			Listeners []struct {
				Name           string
				AttachedRoutes int32
				Conditions     []struct {
					Type, Reason string
					Status       bool
				}
			}
			Parents []struct {
				Ref struct{ Kind, Name string }
			}
		}
	}
	if err := json.Unmarshal([]byte(g.get("/status")), &rep); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, r := range rep.Resources {
		switch r.Ref.Kind + "/" + r.Ref.Name {
		case "ListenerSet/team":
			seen++
			if len(r.Conditions) == 0 || r.Conditions[0].Type != "Accepted" || !r.Conditions[0].Status {
				t.Errorf("ListenerSet conditions = %+v, want Accepted", r.Conditions)
			}
			if len(r.Listeners) != 3 || r.Listeners[0].AttachedRoutes != 1 || r.Listeners[1].AttachedRoutes != 2 {
				t.Errorf("ListenerSet listeners = %+v, want attachedRoutes 1 and 2", r.Listeners)
			} else if c := r.Listeners[2].Conditions[0]; c.Type != "Accepted" || c.Status || c.Reason != "HostnameConflict" {
				t.Errorf("clashing listener's Accepted = %+v, want False HostnameConflict", c)
			}
		case "HTTPRoute/gateway-route", "HTTPRoute/set-route":
			seen++
			if len(r.Parents) != 1 {
				t.Errorf("%s parents = %+v, want only the one it names", r.Ref.Name, r.Parents)
			}
		}
	}
	if seen != 3 {
		t.Errorf("status lists %d of the ListenerSet and two routes", seen)
	}

	// The Gateway stops allowing ListenerSets: their listeners are gone.
	old := g.version()
	writeFile(t, dir, "gateway.yaml", gw("None"))
	g.waitVersion(old)
	resp, _ := get(t, shared+"/", "Host", "ls.example")
	if resp.StatusCode != 404 {
		t.Errorf("ls.example after detaching: %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, shared+"/", "Host", "gw.example"); resp.StatusCode != 200 || resp.Header.Get("X-Backend") != "v1" {
		t.Errorf("gw.example after detaching: %d from %q, want 200 from v1", resp.StatusCode, resp.Header.Get("X-Backend"))
	}
	// The socket of the set's own port is closed once the new
	// configuration is applied (listeners are swapped right after the
	// version changes): poll rather than race.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", own), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("port %d of the detached ListenerSet still accepts connections", own)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := g.get("/status"); !strings.Contains(st, `"NotAllowed"`) {
		t.Errorf("status does not say the ListenerSet is NotAllowed:\n%.2000s", st)
	}
}
