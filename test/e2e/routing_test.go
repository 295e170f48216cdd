package e2e

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

// TestRouting drives the binary with one configuration that uses every
// HTTPRoute match type and filter, and checks what reaches the backends.
func TestRouting(t *testing.T) {
	v1 := backend(t, "v1", nil)
	v2 := backend(t, "v2", nil)
	port := freePort(t)
	dir := t.TempDir()
	writeFile(t, dir, "gateway.yaml", gatewayYAML(port))
	writeFile(t, dir, "backends/v1.yaml", backendYAML("v1", v1))
	writeFile(t, dir, "backends/v2.yml", backendYAML("v2", v2))
	writeFile(t, dir, "routes.yaml", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app}
spec:
  parentRefs: [{name: gw}]
  hostnames: [app.example.com]
  rules:
  - matches: [{path: {type: Exact, value: /exact}}]
    backendRefs: [{group: causeway.dev, kind: Backend, name: v2}]
  - matches: [{path: {type: PathPrefix, value: /api}, method: POST}]
    backendRefs: [{group: causeway.dev, kind: Backend, name: v2}]
  - matches: [{path: {type: RegularExpression, value: "/items/[0-9]+"}}]
    backendRefs: [{group: causeway.dev, kind: Backend, name: v2}]
  - matches: [{headers: [{name: X-Version, value: "2"}]}]
    backendRefs: [{group: causeway.dev, kind: Backend, name: v2}]
  - matches: [{queryParams: [{name: v, type: RegularExpression, value: "^2$"}]}]
    backendRefs: [{group: causeway.dev, kind: Backend, name: v2}]
  - matches: [{path: {type: PathPrefix, value: /rewrite}}]
    filters:
    - type: URLRewrite
      urlRewrite: {hostname: internal.example.com, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Set, value: s}]
        add: [{name: X-Add, value: a}]
        remove: [X-Remove]
    - type: ResponseHeaderModifier
      responseHeaderModifier: {set: [{name: X-Resp, value: r}]}
    backendRefs: [{group: causeway.dev, kind: Backend, name: v1}]
  - matches: [{path: {type: PathPrefix, value: /redirect}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, hostname: secure.example.com, statusCode: 301}
  - matches: [{path: {type: PathPrefix, value: /broken}}]
    backendRefs: [{name: no-such-service, port: 80}]
  - backendRefs: [{group: causeway.dev, kind: Backend, name: v1}]
`)
	g := startGateway(t, dir, "--access-log", "stdout")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	host := "app.example.com"

	cases := []struct {
		name, method, path string
		hdr                []string
		want               string
	}{
		{"exact", "GET", "/exact", nil, "v2"},
		{"exact is not a prefix", "GET", "/exact/more", nil, "v1"},
		{"prefix and method", "POST", "/api/x", nil, "v2"},
		{"prefix, wrong method", "GET", "/api/x", nil, "v1"},
		{"prefix is element-wise", "POST", "/apix", nil, "v1"},
		{"regex", "GET", "/items/42", nil, "v2"},
		{"regex is anchored", "GET", "/items/42x", nil, "v1"},
		{"header", "GET", "/", []string{"X-Version", "2"}, "v2"},
		{"query regex", "GET", "/?v=2", nil, "v2"},
		{"default", "GET", "/anything", nil, "v1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := mustRequest(t, c.method, base+c.path)
			req.Host = host
			for i := 0; i+1 < len(c.hdr); i += 2 {
				req.Header.Set(c.hdr[i], c.hdr[i+1])
			}
			resp, body := do(t, req)
			if resp.StatusCode != 200 || resp.Header.Get("X-Backend") != c.want {
				t.Fatalf("got %d from %q, want 200 from %q: %s", resp.StatusCode, resp.Header.Get("X-Backend"), c.want, body)
			}
		})
	}

	t.Run("unknown host is 404", func(t *testing.T) {
		resp, _ := get(t, base+"/", "Host", "other.example.com")
		if resp.StatusCode != 404 {
			t.Fatalf("status %d, want 404", resp.StatusCode)
		}
	})
	t.Run("rewrite and header filters", func(t *testing.T) {
		resp, body := get(t, base+"/rewrite/x?q=1", "Host", host, "X-Remove", "gone", "X-Add", "first")
		e := decodeEcho(t, body)
		if e.Path != "/new/x" || e.Query != "q=1" || e.Host != "internal.example.com" {
			t.Errorf("rewrite: path %q query %q host %q", e.Path, e.Query, e.Host)
		}
		if got := e.Headers["X-Set"]; len(got) != 1 || got[0] != "s" {
			t.Errorf("X-Set = %q", got)
		}
		if got := e.Headers["X-Add"]; len(got) != 2 {
			t.Errorf("X-Add = %q, want the client's value and the added one", got)
		}
		if _, ok := e.Headers["X-Remove"]; ok {
			t.Errorf("X-Remove reached the backend")
		}
		if resp.Header.Get("X-Resp") != "r" {
			t.Errorf("response header X-Resp = %q", resp.Header.Get("X-Resp"))
		}
		if xff := e.Headers["X-Forwarded-For"]; len(xff) != 1 || xff[0] != "127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q", xff)
		}
		if e.Headers["X-Forwarded-Proto"][0] != "http" || e.Headers["X-Forwarded-Host"][0] != host {
			t.Errorf("X-Forwarded-Proto/Host = %q %q", e.Headers["X-Forwarded-Proto"], e.Headers["X-Forwarded-Host"])
		}
		if id := e.Headers["X-Request-Id"]; len(id) != 1 || len(id[0]) < 16 {
			t.Errorf("X-Request-Id = %q", id)
		}
	})
	t.Run("redirect", func(t *testing.T) {
		resp, _ := get(t, base+"/redirect/here?a=b", "Host", host)
		if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://secure.example.com/redirect/here?a=b" {
			t.Fatalf("got %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("invalid backend is 500", func(t *testing.T) {
		resp, _ := get(t, base+"/broken", "Host", host)
		if resp.StatusCode != 500 {
			t.Fatalf("status %d, want 500", resp.StatusCode)
		}
	})
	t.Run("curl", func(t *testing.T) {
		out, err := exec.Command("curl", "-sS", "-H", "Host: "+host, "-H", "X-Version: 2", base+"/").CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v: %s", err, out)
		}
		if !strings.Contains(string(out), `"backend":"v2"`) {
			t.Fatalf("curl got %s", out)
		}
	})
	t.Run("access log", func(t *testing.T) {
		var found bool
		waitFor(t, "the access log flush", func() bool { return strings.Contains(g.stdout.String(), "/items/42") })
		for _, e := range g.accessLog() {
			if e["path"] == "/items/42" {
				found = true
				if e["status"] != float64(200) || e["method"] != "GET" || e["authority"] != host ||
					!strings.Contains(fmt.Sprint(e["route"]), "app") || e["request_id"] == "" {
					t.Errorf("access log entry %v", e)
				}
			}
		}
		if !found {
			t.Errorf("no access log line for /items/42 in\n%s", g.stdout.String())
		}
	})
}

func TestWeightedBackends(t *testing.T) {
	a := backend(t, "a", nil)
	b := backend(t, "b", nil)
	port := freePort(t)
	dir := t.TempDir()
	writeFile(t, dir, "all.yaml", gatewayYAML(port)+"---\n"+backendYAML("a", a)+"---\n"+backendYAML("b", b)+`---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: split}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs:
    - {group: causeway.dev, kind: Backend, name: a, weight: 3}
    - {group: causeway.dev, kind: Backend, name: b, weight: 1}
    - {name: missing, port: 80, weight: 0}
`)
	startGateway(t, dir, "--access-log", "off")
	counts := map[string]int{}
	const n = 800
	for range n {
		resp, _ := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
		counts[resp.Header.Get("X-Backend")]++
	}
	// 3:1 → a expects 600; binomial σ ≈ 12, allow ±6σ.
	if counts["a"] < 528 || counts["a"] > 672 || counts["a"]+counts["b"] != n {
		t.Fatalf("split %v, want about 600/200 and nothing else", counts)
	}
}

func mustRequest(t testing.TB, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
