package e2e

import (
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Resilience seen from outside the binary: locality-weighted distribution
// over three zones, and outlier ejections in the admin /metrics.

// TestLocalityDistribute: a gateway in r1/zone-a with a distribute rule
// sends 60/30/10 to zones a, b and c of three real backends; when zone c's
// backend dies and fails its health checks, a and b share its part 2:1.
func TestLocalityDistribute(t *testing.T) {
	zones := []struct{ region, zone string }{{"r1", "zone-a"}, {"r1", "zone-b"}, {"r2", "zone-c"}}
	bs := make([]*chaosBackend, len(zones))
	var eps []string
	for i, z := range zones {
		bs[i] = newChaosBackend(t, "b-"+z.zone)
		host, p, _ := net.SplitHostPort(bs[i].addr)
		eps = append(eps, fmt.Sprintf("  - {ip: {address: %s, port: %s}, zone: %s, region: %s}", host, p, z.zone, z.region))
	}
	port := freePort(t)
	dir := t.TempDir()
	writeFile(t, dir, "config.yaml", gatewayYAML(port)+fmt.Sprintf(`---
apiVersion: causeway.dev/v1alpha1
kind: Backend
metadata: {name: pool}
spec:
  endpoints:
%s
---
apiVersion: causeway.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: spread}
spec:
  targetRefs: [{group: causeway.dev, kind: Backend, name: pool}]
  healthCheck:
    # A generous timeout: a slow probe on a loaded machine must not take
    # a live backend out and skew the shares.
    active: {tcp: {}, interval: 100ms, timeout: 2s, unhealthyThreshold: 2, healthyThreshold: 1}
  loadBalancer:
    locality:
      distribute:
      - from: r1/zone-a
        to: {r1/zone-a: 60, r1/zone-b: 30, "r2/*": 10}
      - from: "*"
        to: {"*": 100}
`, strings.Join(eps, "\n"))+"---\n"+routeYAML("r", "pool", "/"))
	startGateway(t, dir, "--access-log", "off", "--zone", "zone-a", "--region", "r1")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	c := &http.Client{Timeout: 5 * time.Second}
	shares := func(n int) map[string]float64 {
		t.Helper()
		got := map[string]float64{}
		for range n {
			resp, err := c.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			got[strings.TrimPrefix(string(body), "b-")] += 1.0 / float64(n)
		}
		return got
	}
	near := func(got map[string]float64, want map[string]float64) bool {
		for z, w := range want {
			// Round robin over zones is exact per 100 requests; the slack
			// covers a snapshot rebuilt mid-way (a health check verdict).
			if math.Abs(got[z]-w) > 0.05 {
				return false
			}
		}
		return true
	}
	want := map[string]float64{"zone-a": 0.6, "zone-b": 0.3, "zone-c": 0.1}
	if got := shares(300); !near(got, want) {
		t.Fatalf("shares %v, want %v", got, want)
	}

	bs[2].kill()
	want = map[string]float64{"zone-a": 2.0 / 3, "zone-b": 1.0 / 3, "zone-c": 0}
	var got map[string]float64
	waitLong(t, "zone-c's share to move to a and b", func() bool { got = shares(150); return near(got, want) })
	if got["zone-c"] != 0 {
		t.Errorf("the dead zone still got %.0f%% of the traffic", got["zone-c"]*100)
	}
}

// TestEjectionMetrics: under load, a backend answering 503 is ejected;
// the admin /metrics shows the ejection counter rise and the ejected
// gauge at 1, and once the backend heals and its ejection ends, the gauge
// is back to 0 and every endpoint counts as healthy.
func TestEjectionMetrics(t *testing.T) {
	bs := []*chaosBackend{newChaosBackend(t, "b0"), newChaosBackend(t, "b1"), newChaosBackend(t, "b2")}
	port := freePort(t)
	dir := t.TempDir()
	writeFile(t, dir, "config.yaml", chaosConfig(port, bs, `---
apiVersion: causeway.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: eject}
spec:
  targetRefs: [{group: causeway.dev, kind: Backend, name: pool}]
  outlierDetection:
    consecutiveGatewayErrors: 2
    baseEjectionTime: 1s
    maxEjectionPercent: 34
`))
	g := startGateway(t, dir, "--access-log", "off")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	const cluster = "backend/default/pool"
	metric := func(text, name, endpoint string) (float64, bool) {
		re := regexp.MustCompile(`(?m)^` + name + `\{cluster="` + regexp.QuoteMeta(cluster) + `"` +
			`(?:,endpoint="` + regexp.QuoteMeta(endpoint) + `")?\} (\S+)$`)
		m := re.FindStringSubmatch(text)
		if m == nil {
			return 0, false
		}
		v, err := strconv.ParseFloat(m[1], 64)
		return v, err == nil
	}
	read := func(name, endpoint string) float64 {
		t.Helper()
		text := g.get("/metrics")
		v, ok := metric(text, name, endpoint)
		if !ok {
			t.Fatalf("no %s for %s in /metrics:\n%s", name, endpoint, upstreamLines(text))
		}
		return v
	}
	bad := bs[0].addr
	if v := read("causeway_upstream_endpoint_ejections_total", bad); v != 0 {
		t.Fatalf("ejections before the fault: %v", v)
	}
	if v := read("causeway_upstream_endpoints_healthy", ""); v != 3 {
		t.Fatalf("healthy endpoints before the fault: %v, want 3", v)
	}

	stop := make(chan struct{})
	ok, _, wait := load(url, 2, stop)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
			wait()
		}
	}()
	waitLong(t, "steady traffic", func() bool { return ok.Load() > 50 })
	bs[0].mode.Store(mode503)
	waitLong(t, "the ejection in /metrics", func() bool {
		return read("causeway_upstream_endpoint_ejections_total", bad) >= 1 &&
			read("causeway_upstream_endpoint_ejected", bad) == 1
	})
	if v := read("causeway_upstream_endpoints_healthy", ""); v != 2 {
		t.Errorf("healthy endpoints with one ejected: %v, want 2", v)
	}
	for _, b := range bs[1:] {
		if v := read("causeway_upstream_endpoint_ejections_total", b.addr); v != 0 {
			t.Errorf("healthy backend %s ejected %v times", b.addr, v)
		}
	}

	bs[0].mode.Store(modeOK)
	waitLong(t, "the ejected gauge back to 0", func() bool {
		return read("causeway_upstream_endpoint_ejected", bad) == 0 &&
			read("causeway_upstream_endpoints_healthy", "") == 3
	})
	close(stop)
	wait()
	if v := read("causeway_upstream_endpoint_ejections_total", bad); v < 1 {
		t.Errorf("the ejection counter went down to %v", v)
	}
}

func upstreamLines(text string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "causeway_upstream_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// waitLong is waitFor with room for a loaded machine: health checks and
// ejection timers take a few hundred milliseconds each.
func waitLong(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
