package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestCORS drives the binary with HTTPRoute CORS filters (the routes of the
// Gateway API HTTPRouteCORS conformance test, a per-backendRef filter and a
// redirect) and checks preflights answered by the gateway, the headers of
// actual requests, and credentials.
func TestCORS(t *testing.T) {
	v1 := backend(t, "v1", nil)
	v2 := backend(t, "v2", nil)
	port := freePort(t)
	dir := t.TempDir()
	writeFile(t, dir, "gateway.yaml", gatewayYAML(port))
	writeFile(t, dir, "backends.yaml", backendYAML("v1", v1)+"---\n"+backendYAML("v2", v2))
	writeFile(t, dir, "routes.yaml", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: cors}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /cors-1}}]
    filters:
    - type: CORS
      cors:
        allowOrigins: ["https://www.foo.com", "https://*.bar.com"]
        allowMethods: [GET, OPTIONS]
        allowHeaders: [x-header-1, x-header-2]
        exposeHeaders: [x-header-3, x-header-4]
        allowCredentials: true
        maxAge: 3600
    backendRefs: [{group: causeway.dev, kind: Backend, name: v1}]
  - matches: [{path: {type: PathPrefix, value: /open}}]
    filters:
    - type: CORS
      cors: {allowOrigins: ["*"], allowMethods: [PUT], allowCredentials: false}
    backendRefs: [{group: causeway.dev, kind: Backend, name: v1}]
  - matches: [{path: {type: PathPrefix, value: /wild}}]
    filters:
    - type: CORS
      cors: {allowOrigins: ["*"], allowMethods: ["*"], allowHeaders: ["*"], allowCredentials: true}
    backendRefs: [{group: causeway.dev, kind: Backend, name: v1}]
  - matches: [{path: {type: PathPrefix, value: /per-backend}}]
    backendRefs:
    - group: causeway.dev
      kind: Backend
      name: v2
      filters:
      - type: CORS
        cors: {allowOrigins: ["http://localhost:3000"], allowMethods: [DELETE]}
  - matches: [{path: {type: PathPrefix, value: /moved}}]
    filters:
    - type: CORS
      cors: {allowOrigins: ["https://app.example"]}
    - type: RequestRedirect
      requestRedirect: {hostname: new.example.com}
`)
	startGateway(t, dir)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	send := func(t *testing.T, method, path string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req := mustRequest(t, method, base+path)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		return do(t, req)
	}
	// want checks response headers; "" means absent.
	want := func(t *testing.T, resp *http.Response, kv ...string) {
		t.Helper()
		for i := 0; i+1 < len(kv); i += 2 {
			got, ok := resp.Header[http.CanonicalHeaderKey(kv[i])]
			switch {
			case kv[i+1] == "" && ok:
				t.Errorf("%s: %q, want absent", kv[i], got)
			case kv[i+1] != "" && strings.Join(got, ", ") != kv[i+1]:
				t.Errorf("%s: %q, want %q", kv[i], got, kv[i+1])
			}
		}
	}
	// answered checks a preflight was answered by the gateway itself.
	answered := func(t *testing.T, resp *http.Response, body string) {
		t.Helper()
		if resp.StatusCode != http.StatusNoContent || body != "" || resp.Header.Get("X-Backend") != "" {
			t.Fatalf("status %d, X-Backend %q, body %q; want 204 from the gateway",
				resp.StatusCode, resp.Header.Get("X-Backend"), body)
		}
	}

	t.Run("preflight allowed, exact origin", func(t *testing.T) {
		resp, body := send(t, "OPTIONS", "/cors-1", "Origin", "https://www.foo.com",
			"Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "x-header-1, x-header-2")
		answered(t, resp, body)
		want(t, resp,
			"Access-Control-Allow-Origin", "https://www.foo.com",
			"Access-Control-Allow-Methods", "GET, OPTIONS",
			"Access-Control-Allow-Headers", "x-header-1, x-header-2",
			"Access-Control-Expose-Headers", "x-header-3, x-header-4",
			"Access-Control-Max-Age", "3600",
			"Access-Control-Allow-Credentials", "true",
			"Vary", "Origin")
	})
	t.Run("preflight allowed, wildcard origin with default port", func(t *testing.T) {
		resp, body := send(t, "OPTIONS", "/cors-1", "Origin", "https://xpto.www.bar.com:443",
			"Access-Control-Request-Method", "GET")
		answered(t, resp, body)
		want(t, resp, "Access-Control-Allow-Origin", "https://xpto.www.bar.com:443",
			"Access-Control-Allow-Credentials", "true")
	})
	t.Run("preflight denied", func(t *testing.T) {
		for _, origin := range []string{"https://foobar.com", "https://bar.com", "http://www.foo.com", "https://www.foo.com:8443"} {
			resp, body := send(t, "OPTIONS", "/cors-1", "Origin", origin, "Access-Control-Request-Method", "GET")
			answered(t, resp, body)
			want(t, resp, "Access-Control-Allow-Origin", "", "Access-Control-Allow-Methods", "",
				"Access-Control-Allow-Credentials", "")
		}
	})
	t.Run("actual request allowed", func(t *testing.T) {
		resp, body := send(t, "GET", "/cors-1/x", "Origin", "https://www.bar.com")
		if resp.StatusCode != 200 || resp.Header.Get("X-Backend") != "v1" {
			t.Fatalf("status %d from %q, want 200 from v1", resp.StatusCode, resp.Header.Get("X-Backend"))
		}
		want(t, resp, "Access-Control-Allow-Origin", "https://www.bar.com",
			"Access-Control-Allow-Credentials", "true",
			"Access-Control-Expose-Headers", "x-header-3, x-header-4",
			"Access-Control-Allow-Methods", "", "Access-Control-Max-Age", "",
			"Vary", "Origin")
		if e := decodeEcho(t, body); strings.Join(e.Headers["Origin"], ",") != "https://www.bar.com" {
			t.Errorf("backend saw Origin %q, want it forwarded", e.Headers["Origin"])
		}
	})
	t.Run("actual request denied is served without CORS headers", func(t *testing.T) {
		resp, _ := send(t, "GET", "/cors-1", "Origin", "https://foobar.com")
		if resp.StatusCode != 200 || resp.Header.Get("X-Backend") != "v1" {
			t.Fatalf("status %d from %q, want 200 from v1", resp.StatusCode, resp.Header.Get("X-Backend"))
		}
		want(t, resp, "Access-Control-Allow-Origin", "", "Access-Control-Allow-Credentials", "", "Vary", "Origin")
	})
	t.Run("request without Origin", func(t *testing.T) {
		resp, _ := send(t, "GET", "/cors-1")
		want(t, resp, "Access-Control-Allow-Origin", "", "Vary", "Origin")
	})
	t.Run("OPTIONS that is not a preflight is forwarded", func(t *testing.T) {
		resp, body := send(t, "OPTIONS", "/cors-1", "Origin", "https://www.foo.com")
		if resp.StatusCode != 200 || decodeEcho(t, body).Method != "OPTIONS" {
			t.Fatalf("status %d, body %q; want the backend's echo of OPTIONS", resp.StatusCode, body)
		}
		want(t, resp, "Access-Control-Allow-Origin", "https://www.foo.com")
	})
	t.Run("any origin without credentials", func(t *testing.T) {
		resp, body := send(t, "OPTIONS", "/open", "Origin", "https://foobar.com:12345", "Access-Control-Request-Method", "PUT")
		answered(t, resp, body)
		want(t, resp, "Access-Control-Allow-Origin", "*", "Access-Control-Allow-Methods", "PUT",
			"Access-Control-Max-Age", "5", "Access-Control-Allow-Credentials", "")
		resp, _ = send(t, "PUT", "/open", "Origin", "https://foobar.com")
		want(t, resp, "Access-Control-Allow-Origin", "*", "Access-Control-Allow-Credentials", "", "Vary", "")
	})
	t.Run("wildcards with credentials echo the request", func(t *testing.T) {
		resp, body := send(t, "OPTIONS", "/wild", "Origin", "https://other.foo.com",
			"Access-Control-Request-Method", "PATCH", "Access-Control-Request-Headers", "x-header-1, authorization")
		answered(t, resp, body)
		want(t, resp, "Access-Control-Allow-Origin", "https://other.foo.com",
			"Access-Control-Allow-Methods", "PATCH",
			"Access-Control-Allow-Headers", "x-header-1, authorization",
			"Access-Control-Allow-Credentials", "true")
		resp, _ = send(t, "GET", "/wild", "Origin", "https://other.foo.com", "Cookie", "session=1")
		want(t, resp, "Access-Control-Allow-Origin", "https://other.foo.com", "Access-Control-Allow-Credentials", "true")
		// The opaque origin is never handed credentialed responses.
		resp, _ = send(t, "GET", "/wild", "Origin", "null")
		want(t, resp, "Access-Control-Allow-Origin", "", "Access-Control-Allow-Credentials", "")
	})
	t.Run("per-backendRef filter", func(t *testing.T) {
		resp, body := send(t, "OPTIONS", "/per-backend", "Origin", "http://localhost:3000", "Access-Control-Request-Method", "DELETE")
		answered(t, resp, body)
		want(t, resp, "Access-Control-Allow-Origin", "http://localhost:3000", "Access-Control-Allow-Methods", "DELETE")
		resp, _ = send(t, "DELETE", "/per-backend", "Origin", "http://localhost:3000")
		if resp.Header.Get("X-Backend") != "v2" {
			t.Fatalf("served by %q, want v2", resp.Header.Get("X-Backend"))
		}
		want(t, resp, "Access-Control-Allow-Origin", "http://localhost:3000")
	})
	t.Run("redirect carries CORS headers", func(t *testing.T) {
		resp, _ := send(t, "GET", "/moved", "Origin", "https://app.example")
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("status %d, want 302", resp.StatusCode)
		}
		want(t, resp, "Access-Control-Allow-Origin", "https://app.example")
		resp, body := send(t, "OPTIONS", "/moved", "Origin", "https://app.example", "Access-Control-Request-Method", "GET")
		answered(t, resp, body)
	})
}
