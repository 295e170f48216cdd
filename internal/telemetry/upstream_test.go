package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/upstream"
)

// TestUpstreamMetrics runs a real upstream Manager against loopback
// backends: an endpoint answering 503 is ejected, which the counter and
// gauge show; once it returns, the gauge is back to 0 and the healthy
// count whole again. Values are read through the /metrics handler.
func TestUpstreamMetrics(t *testing.T) {
	var failing atomic.Bool
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer bad.Close()
	good := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer good.Close()
	events := make(chan string, 10)
	um := upstream.NewManager(upstream.Options{OnEndpointEvent: func(_, _, ev string) { events <- ev }})
	defer um.Close()
	badAddr, goodAddr := bad.Listener.Addr().String(), good.Listener.Addr().String()
	um.Update([]*ir.Cluster{{Name: "pool", Protocol: ir.UpstreamHTTP1,
		Endpoints: []ir.Endpoint{{Address: badAddr}, {Address: goodAddr}},
		Outlier: &ir.OutlierDetection{ConsecutiveGatewayErrors: 1, BaseEjectionTime: ir.Duration(300 * time.Millisecond),
			MaxEjectionPercent: 50}}})

	m := NewMetrics()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	scrape := func() string {
		t.Helper()
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	has := func(text string, lines ...string) {
		t.Helper()
		for _, l := range lines {
			if !strings.Contains(text, "\n"+l+"\n") {
				t.Errorf("no line %q in:\n%s", l, grepLines(text, "causeway_upstream"))
			}
		}
	}
	if s := scrape(); strings.Contains(s, "causeway_upstream_endpoint") {
		t.Fatalf("upstream metrics before WatchUpstreams:\n%s", s)
	}
	m.WatchUpstreams(um)
	ejections := `causeway_upstream_endpoint_ejections_total{cluster="pool",endpoint="` + badAddr + `"} `
	ejected := `causeway_upstream_endpoint_ejected{cluster="pool",endpoint="` + badAddr + `"} `
	has(scrape(), ejections+"0", ejected+"0", `causeway_upstream_endpoints_healthy{cluster="pool"} 2`,
		`causeway_upstream_endpoints{cluster="pool"} 2`,
		`causeway_upstream_health_transitions_total{cluster="pool",endpoint="`+goodAddr+`",to="unhealthy"} 0`)

	failing.Store(true)
	c := um.Cluster("pool")
	for range 4 { // round robin: the bad endpoint is among them
		req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://pool/", nil)
		if resp, err := c.RoundTrip(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	if ev := <-events; ev != upstream.EventEjected {
		t.Fatalf("event %q, want ejected", ev)
	}
	has(scrape(), ejections+"1", ejected+"1", `causeway_upstream_endpoints_healthy{cluster="pool"} 1`)

	failing.Store(false)
	select {
	case ev := <-events:
		if ev != upstream.EventReturned {
			t.Fatalf("event %q, want returned", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the endpoint did not return")
	}
	has(scrape(), ejections+"1", ejected+"0", `causeway_upstream_endpoints_healthy{cluster="pool"} 2`)

	// A reload without the cluster removes its series.
	um.Update(nil)
	if s := scrape(); strings.Contains(s, `cluster="pool"`) {
		t.Errorf("removed cluster still reported:\n%s", grepLines(s, "causeway_upstream"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestWatchUpstreamsNil: nil Metrics ignore the call; nil stops the
// reporting.
func TestWatchUpstreamsNil(t *testing.T) {
	var none *Metrics
	none.WatchUpstreams(nil)
	um := upstream.NewManager(upstream.Options{})
	defer um.Close()
	um.Update([]*ir.Cluster{{Name: "c", Protocol: ir.UpstreamHTTP1, Endpoints: []ir.Endpoint{{Address: "127.0.0.1:1"}}}})
	m := NewMetrics()
	m.WatchUpstreams(um)
	find(t, m, "causeway_upstream_endpoints", map[string]string{"cluster": "c"})
	m.WatchUpstreams(nil)
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if strings.HasPrefix(f.GetName(), "causeway_upstream_endpoint") {
			t.Errorf("%s still reported after WatchUpstreams(nil)", f.GetName())
		}
	}
}
