package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func routeYAML(name, backendName, path string) string {
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: %s}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: %s}}]
    backendRefs: [{group: causeway.dev, kind: Backend, name: %s}]
`, name, path, backendName)
}

// TestReloadUnderLoad rewrites the configuration 50 times while clients send
// requests without pause; not one request may fail, and every change must
// show up.
func TestReloadUnderLoad(t *testing.T) {
	a := backend(t, "a", nil)
	b := backend(t, "b", nil)
	port := freePort(t)
	dir := t.TempDir()
	writeFile(t, dir, "gateway.yaml", gatewayYAML(port)+"---\n"+backendYAML("a", a)+"---\n"+backendYAML("b", b))
	writeFile(t, dir, "route.yaml", routeYAML("r", "a", "/"))
	g := startGateway(t, dir, "--access-log", "off")
	url := fmt.Sprintf("http://127.0.0.1:%d/load", port)

	var sent, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(url)
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d: %s", resp.StatusCode, body))
				}
			}
		}()
	}
	version := g.version()
	for i := range 50 {
		target := []string{"b", "a"}[i%2] // each write differs from the last
		writeFile(t, dir, "route.yaml", routeYAML("r", target, "/"))
		version = g.waitVersion(version)
		resp, _ := get(t, url)
		if got := resp.Header.Get("X-Backend"); got != target {
			t.Errorf("change %d: served by %q, want %q", i, got, target)
		}
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", failed.Load(), sent.Load(), firstErr.Load())
	}
	if sent.Load() < 100 {
		t.Fatalf("only %d requests sent: the load was not continuous", sent.Load())
	}
	t.Logf("%d requests during 50 reloads, none failed", sent.Load())
}

// TestInvalidChangeKeepsServing: a broken file and an invalid resource are
// refused with a status naming them; what was valid keeps serving.
func TestInvalidChangeKeepsServing(t *testing.T) {
	a := backend(t, "a", nil)
	port := freePort(t)
	dir := t.TempDir()
	writeFile(t, dir, "gateway.yaml", gatewayYAML(port)+"---\n"+backendYAML("a", a))
	writeFile(t, dir, "route.yaml", routeYAML("r", "a", "/"))
	g := startGateway(t, dir, "--access-log", "off")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	// A syntax error mid-edit: the file's previous content stays in use.
	v := g.version()
	writeFile(t, dir, "route.yaml", "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r\n  spec: [")
	waitFor(t, "status to report the broken file", func() bool {
		return strings.Contains(g.get("/status?problems=1"), "route.yaml")
	})
	if resp, _ := get(t, url); resp.StatusCode != 200 {
		t.Fatalf("after a broken file: status %d, want the previous route to keep serving", resp.StatusCode)
	}
	if g.version() != v {
		t.Errorf("a broken file changed the served configuration")
	}

	// An invalid route beside a valid one: the invalid one alone is refused.
	writeFile(t, dir, "route.yaml", routeYAML("r", "a", "/")+"---\n"+`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: RegularExpression, value: "/(unclosed"}}]
    backendRefs: [{group: causeway.dev, kind: Backend, name: a}]
`)
	waitFor(t, "status to report the bad route", func() bool {
		return strings.Contains(g.get("/status?problems=1"), "HTTPRoute/default/bad")
	})
	if resp, _ := get(t, url); resp.StatusCode != 200 {
		t.Fatalf("valid route stopped serving: %d", resp.StatusCode)
	}
	problems := g.get("/status?problems=1")
	if !strings.Contains(problems, "route.yaml#2") || !strings.Contains(problems, "spec.rules[0].matches[0].path") {
		t.Errorf("problem does not name file#doc and field:\n%s", problems)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
