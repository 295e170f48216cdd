package e2e

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	t.Run("quickstart is valid", func(t *testing.T) {
		out, err := exec.Command(binary, "validate", "../../examples/quickstart").CombinedOutput()
		if err != nil {
			t.Fatalf("validate examples/quickstart: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "0 problems") || !strings.Contains(string(out), "HTTPRoute/default/app") {
			t.Fatalf("unexpected output:\n%s", out)
		}
	})
	t.Run("problems name file, document and field", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "gw.yaml", gatewayYAML(8080))
		writeFile(t, dir, "routes.yaml", `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: good}
spec:
  parentRefs: [{name: gw}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: nope, port: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: unknown-kind}
`)
		cmd := exec.Command(binary, "validate", dir)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("exit: %v, want status 1\n%s", err, out)
		}
		s := string(out)
		for _, want := range []string{"routes.yaml#2", "HTTPRoute/default/app", "spec.rules[0].backendRefs[0]", "BackendNotFound", "routes.yaml#3", "Pod"} {
			if !strings.Contains(s, want) {
				t.Errorf("output lacks %q:\n%s", want, s)
			}
		}
	})
}

// TestDrainOnSIGTERM: a request in flight when SIGTERM arrives completes,
// new connections are refused, and the exit status is 0.
func TestDrainOnSIGTERM(t *testing.T) {
	slow := backend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(700 * time.Millisecond)
		w.Write([]byte("finished"))
	})
	port := freePort(t)
	dir := t.TempDir()
	writeFile(t, dir, "all.yaml", gatewayYAML(port)+"---\n"+backendYAML("slow", slow)+"---\n"+routeYAML("r", "slow", "/"))
	g := startGateway(t, dir, "--access-log", "off")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b := make([]byte, 64)
		n, _ := resp.Body.Read(b)
		res <- result{code: resp.StatusCode, body: string(b[:n])}
	}()
	time.Sleep(200 * time.Millisecond) // let the request reach the backend
	if err := g.stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want 0\n%s", err, g.stderr.String())
	}
	r := <-res
	if r.err != nil || r.code != 200 || r.body != "finished" {
		t.Fatalf("in-flight request: %+v, want 200 finished", r)
	}
	if _, err := http.Get(url); err == nil {
		t.Fatalf("gateway still accepts after exit")
	}
}

func TestAdmin(t *testing.T) {
	a := backend(t, "a", nil)
	port := freePort(t)
	dir := t.TempDir()
	writeFile(t, dir, "all.yaml", gatewayYAML(port)+"---\n"+backendYAML("a", a)+"---\n"+routeYAML("r", "a", "/"))
	g := startGateway(t, dir, "--access-log", "off")
	get(t, fmt.Sprintf("http://127.0.0.1:%d/x", port))

	if b := g.get("/healthz"); !strings.Contains(b, "ok") {
		t.Errorf("/healthz: %q", b)
	}
	cfg := g.get("/config")
	if !strings.Contains(cfg, `"backend/default/a"`) || !strings.Contains(cfg, `"listeners"`) {
		t.Errorf("/config lacks the cluster or listeners:\n%s", cfg)
	}
	st := g.get("/status")
	for _, want := range []string{"Gateway", "Programmed", "HTTPRoute", "Accepted"} {
		if !strings.Contains(st, want) {
			t.Errorf("/status lacks %q", want)
		}
	}
	m := g.get("/metrics")
	for _, want := range []string{"causeway_http_requests_total{", `route="httproute/default/r/rule/0/match/0"`, "causeway_http_request_duration_seconds_bucket", "causeway_downstream_connections_active"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The admin API is on loopback only by default.
	if !strings.HasPrefix(g.admin, "127.0.0.1:") {
		t.Errorf("admin on %s", g.admin)
	}
}
