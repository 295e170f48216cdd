package e2e

import (
	"bufio"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"causeway.dev/causeway/test/testbin"
	"causeway.dev/causeway/test/testcert"
)

// certPool returns a pool of the PEM certificates pems.
func certPool(pems ...[]byte) *x509.CertPool {
	p := x509.NewCertPool()
	for _, b := range pems {
		p.AppendCertsFromPEM(b)
	}
	return p
}

func secretYAML(name string, cert, key []byte) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: %s}
type: kubernetes.io/tls
data:
  tls.crt: %s
  tls.key: %s
`, name, base64.StdEncoding.EncodeToString(cert), base64.StdEncoding.EncodeToString(key))
}

// TestProtocols: HTTP/2 over TLS with SNI certificate choice, h2c prior
// knowledge downstream, h2c upstream through a Service appProtocol, with curl
// as the client.
func TestProtocols(t *testing.T) {
	plain := backend(t, "plain", nil)
	h2cLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	h2cSrv := &http.Server{Protocols: &protos, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", "h2c")
		fmt.Fprintf(w, "proto=%s", r.Proto)
	})}
	go h2cSrv.Serve(h2cLn)
	t.Cleanup(func() { h2cSrv.Close() })
	h2cPort := h2cLn.Addr().(*net.TCPAddr).Port

	certA, certB := testcert.SelfSigned(t, "a.example.com"), testcert.SelfSigned(t, "b.example.com")
	httpPort, httpsPort := freePort(t), freePort(t)
	dir := t.TempDir()
	caFile := filepath.Join(t.TempDir(), "b.pem")
	os.WriteFile(caFile, certB.CertPEM, 0o644)
	writeFile(t, dir, "all.yaml", testbin.GatewayYAML("gw")+fmt.Sprintf(`  listeners:
  - {name: http, protocol: HTTP, port: %d}
  - name: a
    protocol: HTTPS
    port: %d
    hostname: a.example.com
    tls: {certificateRefs: [{name: cert-a}]}
  - name: b
    protocol: HTTPS
    port: %d
    hostname: b.example.com
    tls: {certificateRefs: [{name: cert-b}]}
---
apiVersion: v1
kind: Service
metadata: {name: grpcish}
spec:
  ports: [{name: h2, port: 80, targetPort: %d, appProtocol: kubernetes.io/h2c}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: grpcish-1, labels: {kubernetes.io/service-name: grpcish}}
addressType: IPv4
ports: [{name: h2, port: %d}]
endpoints: [{addresses: [127.0.0.1]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /h2c}}]
    backendRefs: [{name: grpcish, port: 80}]
  - backendRefs: [{group: causeway.dev, kind: Backend, name: plain}]
---
`, httpPort, httpsPort, httpsPort, h2cPort, h2cPort)+secretYAML("cert-a", certA.CertPEM, certA.KeyPEM)+"---\n"+secretYAML("cert-b", certB.CertPEM, certB.KeyPEM)+"---\n"+backendYAML("plain", plain))
	startGateway(t, dir, "--access-log", "off")

	curl := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("curl", append([]string{"-sS", "--max-time", "10"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	t.Run("h2 over TLS, SNI picks certificate b", func(t *testing.T) {
		out := curl("--http2", "--cacert", caFile, "-w", "\n%{http_version}",
			"--resolve", fmt.Sprintf("b.example.com:%d:127.0.0.1", httpsPort),
			fmt.Sprintf("https://b.example.com:%d/x", httpsPort))
		if !strings.HasSuffix(out, "\n2") || !strings.Contains(out, `"backend":"plain"`) {
			t.Fatalf("got %s", out)
		}
	})
	t.Run("h2c prior knowledge", func(t *testing.T) {
		out := curl("--http2-prior-knowledge", "-w", "\n%{http_version}", fmt.Sprintf("http://127.0.0.1:%d/x", httpPort))
		if !strings.HasSuffix(out, "\n2") {
			t.Fatalf("got %s", out)
		}
	})
	t.Run("h2c upstream", func(t *testing.T) {
		out := curl(fmt.Sprintf("http://127.0.0.1:%d/h2c", httpPort))
		if out != "proto=HTTP/2.0" {
			t.Fatalf("backend saw %q, want HTTP/2.0", out)
		}
	})
}

func TestStreaming(t *testing.T) {
	sse := backend(t, "sse", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 0; ; i++ {
				if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		case "/upload":
			n, err := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "%d %v", n, err)
		}
	})
	wsAddr := backend(t, "ws", websocket.Handler(func(c *websocket.Conn) { io.Copy(c, c) }).ServeHTTP)
	port := freePort(t)
	dir := t.TempDir()
	writeFile(t, dir, "all.yaml", gatewayYAML(port)+"---\n"+backendYAML("sse", sse)+"---\n"+backendYAML("ws", wsAddr)+`---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /ws}}]
    backendRefs: [{group: causeway.dev, kind: Backend, name: ws}]
  - backendRefs: [{group: causeway.dev, kind: Backend, name: sse}]
`)
	g := startGateway(t, dir, "--access-log", "off")
	base := fmt.Sprintf("127.0.0.1:%d", port)

	t.Run("server-sent events arrive one by one", func(t *testing.T) {
		resp, err := http.Get("http://" + base + "/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		rd := bufio.NewReader(resp.Body)
		start := time.Now()
		for i := range 5 {
			line, err := rd.ReadString('\n')
			if err != nil || line != fmt.Sprintf("data: %d\n", i) {
				t.Fatalf("event %d: %q %v", i, line, err)
			}
			rd.ReadString('\n')
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("events were held back")
		}
	})
	t.Run("websocket echo", func(t *testing.T) {
		ws, err := websocket.Dial("ws://"+base+"/ws", "", "http://"+base)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		for i := range 3 {
			msg := "hello " + strconv.Itoa(i)
			if err := websocket.Message.Send(ws, msg); err != nil {
				t.Fatal(err)
			}
			var got string
			if err := websocket.Message.Receive(ws, &got); err != nil || got != msg {
				t.Fatalf("echo %q, %v", got, err)
			}
		}
	})
	t.Run("multi-GB upload with flat memory", func(t *testing.T) {
		const size = 2 << 30
		pr, pw := io.Pipe()
		go func() {
			buf := make([]byte, 1<<20)
			for sent := 0; sent < size; sent += len(buf) {
				if _, err := pw.Write(buf); err != nil {
					return
				}
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", "http://"+base+"/upload", pr)
		req.ContentLength = size
		peak := make(chan int, 1)
		done := make(chan struct{})
		go func() {
			max := 0
			for {
				select {
				case <-done:
					peak <- max
					return
				case <-time.After(100 * time.Millisecond):
					if r := rssKB(g.cmd.Process.Pid); r > max {
						max = r
					}
				}
			}
		}()
		resp, err := http.DefaultClient.Do(req) // no client timeout: this takes a while
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		close(done)
		if resp.StatusCode != 200 || body != fmt.Sprintf("%d <nil>", size) {
			t.Fatalf("upload: %d %q", resp.StatusCode, body)
		}
		if p := <-peak; p > 150<<10 {
			t.Fatalf("gateway RSS peaked at %d MiB while streaming 2 GiB", p>>10)
		}
	})
}

// rssKB reads VmRSS of a process from /proc.
func rssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	return 0
}

// TestUpstreamFailures: connect failure → 503, timeout → 504, each with a
// short body and a response flag in the access log.
func TestUpstreamFailures(t *testing.T) {
	slow := backend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	port := freePort(t)
	dir := t.TempDir()
	writeFile(t, dir, "all.yaml", gatewayYAML(port)+"---\n"+backendYAML("slow", slow)+"---\n"+backendYAML("dead", dead)+`---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {value: /dead}}]
    backendRefs: [{group: causeway.dev, kind: Backend, name: dead}]
  - matches: [{path: {value: /slow}}]
    timeouts: {request: 300ms}
    backendRefs: [{group: causeway.dev, kind: Backend, name: slow}]
`)
	g := startGateway(t, dir, "--access-log", "stdout")
	for _, c := range []struct {
		path string
		code int
		flag string
	}{{"/dead", 503, "UF"}, {"/slow", 504, "UT"}} {
		start := time.Now()
		resp, body := get(t, fmt.Sprintf("http://127.0.0.1:%d%s", port, c.path))
		if resp.StatusCode != c.code || len(body) == 0 || len(body) > 200 {
			t.Errorf("%s: %d %q, want %d with a short body", c.path, resp.StatusCode, body, c.code)
		}
		if c.code == 504 && time.Since(start) > 3*time.Second {
			t.Errorf("timeout took %v", time.Since(start))
		}
		waitFor(t, "access log line for "+c.path, func() bool {
			for _, e := range g.accessLog() {
				if e["path"] == c.path && strings.Contains(fmt.Sprint(e["flags"]), c.flag) && e["status"] == float64(c.code) {
					return true
				}
			}
			return false
		})
	}
}

// TestGatewaysShareAPort: two Gateways on port 80 of two loopback addresses.
func TestGatewaysShareAPort(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("binding port 80 needs root (the test environment runs as root)")
	}
	a := backend(t, "a", nil)
	b := backend(t, "b", nil)
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString(testbin.GatewayClassYAML)
	for _, g := range []struct{ name, ip string }{{"a", "127.0.0.2"}, {"b", "127.0.0.3"}} {
		fmt.Fprintf(&cfg, `---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw-%[1]s}
spec:
  gatewayClassName: causeway
  addresses: [{type: IPAddress, value: %[2]s}]
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r-%[1]s}
spec:
  parentRefs: [{name: gw-%[1]s}]
  rules: [{backendRefs: [{group: causeway.dev, kind: Backend, name: %[1]s}]}]
`, g.name, g.ip)
	}
	cfg.WriteString("---\n" + backendYAML("a", a) + "---\n" + backendYAML("b", b))
	writeFile(t, dir, "all.yaml", cfg.String())
	startGateway(t, dir, "--access-log", "off")
	for ip, want := range map[string]string{"127.0.0.2": "a", "127.0.0.3": "b"} {
		resp, _ := get(t, "http://"+ip+"/")
		if resp.Header.Get("X-Backend") != want {
			t.Errorf("%s:80 served by %q, want %q", ip, resp.Header.Get("X-Backend"), want)
		}
	}
}

// TestBackendKinds: a Backend by DNS name and one on a unix socket.
func TestBackendKinds(t *testing.T) {
	tcp := backend(t, "dns", nil)
	sock := filepath.Join(t.TempDir(), "app.sock")
	uln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	usrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", "unix")
	})}
	go usrv.Serve(uln)
	t.Cleanup(func() { usrv.Close() })
	_, tcpPort, _ := net.SplitHostPort(tcp)
	port := freePort(t)
	dir := t.TempDir()
	writeFile(t, dir, "all.yaml", gatewayYAML(port)+fmt.Sprintf(`---
apiVersion: causeway.dev/v1alpha1
kind: Backend
metadata: {name: by-name}
spec: {endpoints: [{fqdn: {hostname: localhost, port: %s}}]}
---
apiVersion: causeway.dev/v1alpha1
kind: Backend
metadata: {name: by-socket}
spec: {endpoints: [{unix: {path: %s}}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {value: /unix}}]
    backendRefs: [{group: causeway.dev, kind: Backend, name: by-socket}]
  - backendRefs: [{group: causeway.dev, kind: Backend, name: by-name}]
`, tcpPort, sock))
	startGateway(t, dir, "--access-log", "off")
	for path, want := range map[string]string{"/": "dns", "/unix": "unix"} {
		resp, _ := get(t, fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if resp.StatusCode != 200 || resp.Header.Get("X-Backend") != want {
			t.Errorf("%s: %d from %q, want %q", path, resp.StatusCode, resp.Header.Get("X-Backend"), want)
		}
	}
}
