package upstream

import (
	"encoding/binary"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"causeway.dev/causeway/internal/ir"
)

func fastCheck() *ir.HealthCheck {
	return &ir.HealthCheck{Interval: ms(10), Timeout: ms(500), HealthyThreshold: 2, UnhealthyThreshold: 2}
}

func TestHealthCheckHTTP(t *testing.T) {
	checkLeaks(t)
	ns := newNodes(t, 2)
	ev := make(events, 100)
	ic := cluster("c", ir.LBRoundRobin, ns)
	ic.HealthCheck = fastCheck()
	ic.HealthCheck.HTTP = &ir.HTTPHealthCheck{Path: "/health", ExpectedStatuses: []int{200}}
	m := newManager(t, Options{OnEndpointEvent: ev.hook}, ic)
	c := m.Cluster("c")
	if got, _ := tally(t, c, 10); got[ns[0].addr()] != 5 {
		t.Fatalf("before: %v", got)
	}
	ns[0].health.Store(500)
	ev.wait(t, "unhealthy "+ns[0].addr())
	if got, _ := tally(t, c, 10); got[ns[1].addr()] != 10 {
		t.Fatalf("unhealthy endpoint still served: %v", got)
	}
	ns[0].health.Store(0)
	ev.wait(t, "healthy "+ns[0].addr())
	if got, _ := tally(t, c, 10); got[ns[0].addr()] != 5 {
		t.Fatalf("healed endpoint not back: %v", got)
	}

	// A reload with the same check and endpoints keeps the checkers; a new
	// check restarts them.
	run := func() *healthRun { c.mu.Lock(); defer c.mu.Unlock(); return c.hcRun }
	r := run()
	m.Update([]*ir.Cluster{ic})
	if run() != r || m.Cluster("c") != c {
		t.Error("an unchanged reload restarted the health checkers")
	}
	ic2 := *ic
	ic2.HealthCheck = fastCheck()
	ic2.HealthCheck.TCP = true
	m.Update([]*ir.Cluster{&ic2})
	if run() == r || run() == nil {
		t.Error("a changed health check kept the old checkers")
	}
	ic2.HealthCheck = nil
	m.Update([]*ir.Cluster{&ic2})
	if run() != nil {
		t.Error("checkers still run without a health check")
	}
}

func TestHealthCheckTCP(t *testing.T) {
	checkLeaks(t)
	ns := newNodes(t, 1)
	dead := refusedAddr(t)
	ev := make(events, 100)
	ic := h1Cluster("c", ns[0].addr(), dead)
	ic.HealthCheck = fastCheck()
	ic.HealthCheck.TCP = true
	// No outlier detection, and panic off: only the check can remove it.
	zero := 0
	ic.Outlier = &ir.OutlierDetection{PanicThreshold: &zero}
	m := newManager(t, Options{OnEndpointEvent: ev.hook}, ic)
	ev.wait(t, "unhealthy "+dead)
	c := m.Cluster("c")
	st := c.state.Load()
	for range 4 {
		if st.picker.pick(0).ep.addr != ns[0].addr() {
			t.Fatal("closed port still picked")
		}
	}
	if got, _ := tally(t, c, 6); got[ns[0].addr()] != 6 {
		t.Fatalf("%v", got)
	}
}

// grpcHealthServer speaks grpc.health.v1 over h2c (and HTTP/1.1 for other
// paths), answering status.
func grpcHealthServer(t *testing.T, status *atomic.Int32, service *atomic.Value) string {
	return newH2CBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/grpc.health.v1.Health/Check" || r.ProtoMajor != 2 ||
			r.Header.Get("Content-Type") != "application/grpc" || r.Header.Get("Te") != "trailers" {
			http.Error(w, "not a health check", 400)
			return
		}
		b, err := io.ReadAll(r.Body)
		if err != nil || len(b) < 5 || int(binary.BigEndian.Uint32(b[1:5])) != len(b)-5 {
			http.Error(w, "bad frame", 400)
			return
		}
		msg := b[5:]
		svc := ""
		if len(msg) > 0 { // field 1, length-delimited
			if msg[0] != 0x0a || int(msg[1]) != len(msg)-2 {
				http.Error(w, "bad request message", 400)
				return
			}
			svc = string(msg[2:])
		}
		service.Store(svc)
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		st := byte(status.Load())
		w.Write([]byte{0, 0, 0, 0, 2, 0x08, st}) // HealthCheckResponse{status: st}
		w.Header().Set("Grpc-Status", "0")
	}))
}

func TestHealthCheckGRPC(t *testing.T) {
	for _, proto := range []ir.UpstreamProtocol{ir.UpstreamH2C, ir.UpstreamHTTP1} {
		t.Run(string(proto), func(t *testing.T) {
			checkLeaks(t)
			var status atomic.Int32
			var service atomic.Value
			status.Store(1) // SERVING
			good := grpcHealthServer(t, &status, &service)
			var other atomic.Int32
			other.Store(1)
			spare := grpcHealthServer(t, &other, &atomic.Value{})
			ev := make(events, 100)
			ic := &ir.Cluster{Name: "g", Protocol: proto, Endpoints: []ir.Endpoint{{Address: good}, {Address: spare}}}
			ic.HealthCheck = fastCheck()
			ic.HealthCheck.GRPC = &ir.GRPCHealthCheck{Service: "pkg.Echo"}
			m := newManager(t, Options{OnEndpointEvent: ev.hook}, ic)
			status.Store(2) // NOT_SERVING
			ev.wait(t, "unhealthy "+good)
			if got := service.Load(); got != "pkg.Echo" {
				t.Errorf("server saw service %q", got)
			}
			if mb := m.Cluster("g").state.Load().picker.pick(0); mb.ep.addr != spare {
				t.Error("a NOT_SERVING endpoint is picked")
			}
			status.Store(1)
			ev.wait(t, "healthy "+good)
		})
	}
}

func TestGRPCHealthCodec(t *testing.T) {
	req := grpcHealthRequest("a.B")
	if want := []byte{0, 0, 0, 0, 5, 0x0a, 3, 'a', '.', 'B'}; string(req) != string(want) {
		t.Errorf("request % x, want % x", req, want)
	}
	if got := grpcHealthRequest(""); string(got) != "\x00\x00\x00\x00\x00" {
		t.Errorf("empty request % x", got)
	}
	// An unknown field before the status is skipped.
	st, err := grpcHealthStatus([]byte{0, 0, 0, 0, 6, 0x12, 2, 'x', 'y', 0x08, 1})
	if err != nil || st != 1 {
		t.Errorf("status %d, %v", st, err)
	}
	for _, bad := range [][]byte{{1, 0, 0, 0, 0}, {0, 0, 0, 0, 9, 0x08}, {0, 0, 0, 0, 2, 0x08, 0x80}} {
		if _, err := grpcHealthStatus(bad); err == nil {
			t.Errorf("% x decoded", bad)
		}
	}
}
