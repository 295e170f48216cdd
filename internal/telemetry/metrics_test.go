package telemetry

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// find returns the metric of family name whose labels include want.
func find(t *testing.T, m *Metrics, name string, want map[string]string) *dto.Metric {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, mt := range f.GetMetric() {
			got := map[string]string{}
			for _, lp := range mt.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue next
				}
			}
			return mt
		}
	}
	t.Fatalf("no %s with labels %v", name, want)
	return nil
}

func TestRouteObserve(t *testing.T) {
	m := NewMetrics()
	s := m.Route("default/gw", "httproute/default/app/rule/0/match/0", "Service/default/app:80")
	if m.Route("default/gw", "httproute/default/app/rule/0/match/0", "Service/default/app:80") != s {
		t.Fatal("same labels returned a different handle")
	}
	if m.Route("default/gw", "other", "Service/default/app:80") == s {
		t.Fatal("different labels returned the same handle")
	}
	s.Observe(200, 3*time.Millisecond, 10, 100)
	s.Observe(204, 2*time.Second, 0, 0)
	s.Observe(404, time.Millisecond, 5, 7)
	s.Observe(503, time.Millisecond, 0, 0)
	s.Observe(0, time.Millisecond, 0, 0) // no response: 5xx
	s.Observe(101, time.Millisecond, 0, 0)

	labels := map[string]string{"gateway": "default/gw", "route": "httproute/default/app/rule/0/match/0", "backend": "Service/default/app:80"}
	with := func(k, v string) map[string]string {
		out := map[string]string{k: v}
		for a, b := range labels {
			out[a] = b
		}
		return out
	}
	for class, want := range map[string]float64{"1xx": 1, "2xx": 2, "4xx": 1, "5xx": 2} {
		got := find(t, m, "causeway_http_requests_total", with("code_class", class)).GetCounter().GetValue()
		if got != want {
			t.Errorf("requests %s = %v, want %v", class, got, want)
		}
	}
	h := find(t, m, "causeway_http_request_duration_seconds", labels).GetHistogram()
	if h.GetSampleCount() != 6 {
		t.Errorf("histogram count = %d, want 6", h.GetSampleCount())
	}
	if got := h.GetSampleSum(); got < 2.0069 || got > 2.0071 {
		t.Errorf("histogram sum = %v, want 2.007", got)
	}
	if b := h.GetBucket(); b[0].GetUpperBound() != 0.0005 || b[len(b)-1].GetUpperBound() != 30 {
		t.Errorf("buckets from %v to %v, want 0.0005 to 30", b[0].GetUpperBound(), b[len(b)-1].GetUpperBound())
	}
	if got := find(t, m, "causeway_http_request_bytes_total", labels).GetCounter().GetValue(); got != 15 {
		t.Errorf("request bytes = %v, want 15", got)
	}
	if got := find(t, m, "causeway_http_response_bytes_total", labels).GetCounter().GetValue(); got != 107 {
		t.Errorf("response bytes = %v, want 107", got)
	}
}

func TestListenerStats(t *testing.T) {
	m := NewMetrics()
	l := m.Listener("0.0.0.0:80")
	if m.Listener("0.0.0.0:80") != l {
		t.Fatal("same name returned a different handle")
	}
	l.ConnOpened()
	l.ConnOpened()
	l.ConnOpened()
	l.ConnClosed()
	want := map[string]string{"listener": "0.0.0.0:80"}
	if got := find(t, m, "causeway_downstream_connections_active", want).GetGauge().GetValue(); got != 2 {
		t.Errorf("active = %v, want 2", got)
	}
	if got := find(t, m, "causeway_downstream_connections_total", want).GetCounter().GetValue(); got != 3 {
		t.Errorf("total = %v, want 3", got)
	}
}

func TestNilHandles(t *testing.T) {
	var m *Metrics
	s := m.Route("g", "r", "b")
	l := m.Listener("l")
	if s != nil || l != nil {
		t.Fatal("nil Metrics returned non-nil handles")
	}
	// Must not panic.
	s.Observe(200, time.Millisecond, 1, 1)
	l.ConnOpened()
	l.ConnClosed()
}

func TestHandler(t *testing.T) {
	m := NewMetrics()
	m.Route("default/gw", "r1", "b1").Observe(200, time.Millisecond, 1, 2)
	m.Listener("l1").ConnOpened()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, want := range []string{
		`causeway_http_requests_total{backend="b1",code_class="2xx",gateway="default/gw",route="r1"} 1`,
		`causeway_http_request_duration_seconds_bucket{backend="b1",gateway="default/gw",route="r1",le="0.001"} 1`,
		`causeway_downstream_connections_active{listener="l1"} 1`,
		"go_goroutines ",
		"process_cpu_seconds_total ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
}

func BenchmarkObserve(b *testing.B) {
	s := NewMetrics().Route("default/gw", "httproute/default/app/rule/0/match/0", "Service/default/app:80")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Observe(200, 1500*time.Microsecond, 512, 4096)
		}
	})
}
