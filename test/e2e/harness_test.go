package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"causeway.dev/causeway/test/testbin"
)

var binary string

func TestMain(m *testing.M) { testbin.Main(m, &binary) }

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort(t testing.TB) int { return testbin.FreePort(t, "127.0.0.1") }

// writeFile writes name under dir atomically (temp file + rename), as
// editors and config management tools do.
func writeFile(t testing.TB, dir, name, content string) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(name)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// gatewayYAML is a GatewayClass and a Gateway with one HTTP listener on
// 127.0.0.1:port.
func gatewayYAML(port int) string {
	return testbin.GatewayYAML("gw") + fmt.Sprintf(`  listeners:
  - {name: http, protocol: HTTP, port: %d, allowedRoutes: {namespaces: {from: All}}}
`, port)
}

// backendYAML is a causeway Backend named name pointing at addr (host:port).
func backendYAML(name, addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf(`apiVersion: causeway.dev/v1alpha1
kind: Backend
metadata: {name: %s}
spec:
  endpoints: [{ip: {address: %s, port: %s}}]
`, name, host, port)
}

// gateway is a running causeway process.
type gateway struct {
	t      testing.TB
	cmd    *exec.Cmd
	admin  string
	dir    string
	stderr *syncBuffer
	stdout *syncBuffer
	done   chan error
}

// syncBuffer collects a process's output.
type syncBuffer = testbin.Buffer

// startGateway runs `causeway gateway --config dir` and waits until it is
// ready. The access log goes to stdout (g.stdout).
func startGateway(t testing.TB, dir string, args ...string) *gateway {
	t.Helper()
	g := &gateway{t: t, dir: dir, admin: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		stderr: &syncBuffer{}, stdout: &syncBuffer{}, done: make(chan error, 1)}
	all := append([]string{"gateway", "--config", dir, "--admin-addr", g.admin, "--drain-timeout", "10s"}, args...)
	g.cmd = exec.Command(binary, all...)
	g.cmd.Stdout, g.cmd.Stderr = g.stdout, g.stderr
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.done <- g.cmd.Wait() }()
	t.Cleanup(func() {
		g.stop()
		if t.Failed() {
			t.Logf("gateway stderr:\n%s", g.stderr.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + g.admin + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return g
			}
		}
		select {
		case err := <-g.done:
			t.Fatalf("gateway exited before ready: %v\n%s", err, g.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("gateway not ready after 15s\n%s", g.stderr.String())
	return nil
}

// stop sends SIGTERM and waits for the exit; it returns the exit error.
func (g *gateway) stop() error {
	if g.cmd.ProcessState != nil {
		return nil
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-g.done:
		g.done <- err
		return err
	case <-time.After(20 * time.Second):
		_ = g.cmd.Process.Kill()
		return fmt.Errorf("gateway did not exit within 20s of SIGTERM")
	}
}

// waitVersion waits until the admin API serves a configuration whose version
// differs from old, and returns it.
func (g *gateway) waitVersion(old string) string {
	g.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if v := g.version(); v != old && v != "" {
			return v
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.t.Fatalf("configuration version still %q after 5s\n%s", old, g.stderr.String())
	return ""
}

func (g *gateway) version() string {
	var cfg struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal([]byte(g.get("/config")), &cfg); err != nil {
		return ""
	}
	return cfg.Version
}

// wantNoProblems fails the test if the configuration has problems.
func (g *gateway) wantNoProblems() {
	g.t.Helper()
	if p := strings.TrimSpace(g.get("/status?problems=1")); p != "" {
		g.t.Fatalf("configuration problems:\n%s", p)
	}
}

// get fetches an admin path and returns the body.
func (g *gateway) get(path string) string {
	g.t.Helper()
	resp, err := http.Get("http://" + g.admin + path)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// accessLog returns the access log lines written so far, decoded.
func (g *gateway) accessLog() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(g.stdout.String()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// backend is an HTTP server on loopback that names itself in X-Backend and
// echoes the request line and headers as JSON.
func backend(t testing.TB, name string, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Backend", name)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"backend": name, "method": r.Method, "host": r.Host, "path": r.URL.Path,
				"query": r.URL.RawQuery, "headers": r.Header, "proto": r.Proto,
			})
		}
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		srv.Close()
	})
	return ln.Addr().String()
}

// echo is what backend answers.
type echo struct {
	Backend string              `json:"backend"`
	Method  string              `json:"method"`
	Host    string              `json:"host"`
	Path    string              `json:"path"`
	Query   string              `json:"query"`
	Headers map[string][]string `json:"headers"`
	Proto   string              `json:"proto"`
}

// do sends req with a client that does not follow redirects and returns
// the status, headers and body.
func do(t testing.TB, req *http.Request) (*http.Response, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func get(t testing.TB, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

func decodeEcho(t testing.TB, body string) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("backend answer is not an echo: %v: %q", err, body)
	}
	return e
}
