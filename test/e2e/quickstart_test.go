package e2e

import (
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"
)

// TestQuickstart runs the README's first command (built) and the requests
// the README suggests. It uses the quickstart's fixed ports 8080 and 9001-9003.
func TestQuickstart(t *testing.T) {
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(binary, "quickstart", "--admin-addr", admin, "--access-log", "off")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("quickstart output:\n%s", out.String())
		}
	})
	waitFor(t, "quickstart ready", func() bool {
		resp, err := http.Get("http://" + admin + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	time.Sleep(100 * time.Millisecond) // the demo backends start beside the gateway

	counts := map[string]int{}
	for range 200 {
		resp, _ := get(t, "http://127.0.0.1:8080/")
		counts[resp.Header.Get("X-Backend")]++
		if resp.Header.Get("X-Served-By") != "causeway" {
			t.Fatalf("response header filter missing: %v", resp.Header)
		}
	}
	if counts["v1"] < 120 || counts["v2"] < 15 || counts["v1"]+counts["v2"] != 200 {
		t.Errorf("80/20 split: %v", counts)
	}
	if resp, _ := get(t, "http://127.0.0.1:8080/", "x-canary", "true"); resp.Header.Get("X-Backend") != "v2" {
		t.Errorf("canary header went to %q", resp.Header.Get("X-Backend"))
	}
	resp, body := get(t, "http://127.0.0.1:8080/admin/users")
	if resp.Header.Get("X-Backend") != "admin-api" || decodeEcho(t, body).Path != "/users" {
		t.Errorf("admin route: %s %s", resp.Header.Get("X-Backend"), body)
	}
	resp, _ = get(t, "http://127.0.0.1:8080/old-admin")
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "http://127.0.0.1:8080/admin/" {
		t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}
