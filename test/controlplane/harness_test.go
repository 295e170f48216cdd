package controlplane

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"causeway.dev/causeway/internal/push"
	"causeway.dev/causeway/test/testbin"
)

var binary string

func TestMain(m *testing.M) { testbin.Main(m, &binary) }

// freePort returns a TCP port that was free on ip a moment ago.
func freePort(t testing.TB, ip string) int { return testbin.FreePort(t, ip) }

// writeFile writes name under dir atomically, as editors do.
func writeFile(t testing.TB, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer collects a process's output.
type syncBuffer = testbin.Buffer

// process is a running causeway command.
type process struct {
	t      testing.TB
	name   string
	args   []string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

func start(t testing.TB, name string, args ...string) *process {
	t.Helper()
	p := &process{t: t, name: name, args: args, stderr: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.name, p.stderr.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for the exit.
func (p *process) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}

// kill ends the process at once, as a crash would.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	err := <-p.done
	p.done <- err
}

// waitReady polls http://admin/ready until 200.
func waitReady(t testing.TB, p *process, admin string) {
	t.Helper()
	eventually(t, p.name+" ready", 15*time.Second, func() bool {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("%s exited: %v\n%s", p.name, err, p.stderr.String())
		default:
		}
		code, _ := get(admin, "/ready")
		return code == http.StatusOK
	})
}

// eventually polls ok until it holds or the deadline passes.
func eventually(t testing.TB, what string, limit time.Duration, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

var client = &http.Client{Timeout: 5 * time.Second}

// get returns the status and body of http://addr+path ("" on error).
func get(addr, path string) (int, string) {
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// configVersion is the version a proxy's admin API says it serves.
func configVersion(t testing.TB, admin string) string {
	t.Helper()
	code, body := get(admin, "/config")
	if code != http.StatusOK {
		return ""
	}
	var c struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatalf("admin /config: %v", err)
	}
	return c.Version
}

// fleetStatus reads the control plane's proxy table.
func fleetStatus(t testing.TB, admin string) map[string]push.ProxyStatus {
	t.Helper()
	code, body := get(admin, "/proxies")
	out := map[string]push.ProxyStatus{}
	if code != http.StatusOK {
		return out
	}
	var rep push.StatusReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("control /proxies: %v", err)
	}
	for _, p := range rep.Proxies {
		out[p.ID] = p
	}
	return out
}

func synced(p push.ProxyStatus) bool {
	return p.AckedVersion != "" && p.AckedVersion == p.DesiredVersion && !p.Pending && p.LastNack == nil
}

// ctl runs `causeway ctl proxy-status`.
func ctl(t testing.TB, admin string) string {
	t.Helper()
	out, err := exec.Command(binary, "ctl", "proxy-status", "--control-admin", admin).CombinedOutput()
	if err != nil {
		t.Fatalf("ctl proxy-status: %v\n%s", err, out)
	}
	return string(out)
}

// row returns the line of ctl's table for proxy id.
func row(table, id string) string {
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, id+" ") {
			return l
		}
	}
	return ""
}
