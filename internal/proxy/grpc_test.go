package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
)

func TestParseGRPCTimeout(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"100m", 100 * time.Millisecond, true},
		{"5S", 5 * time.Second, true},
		{"2M", 2 * time.Minute, true},
		{"1H", time.Hour, true},
		{"250u", 250 * time.Microsecond, true},
		{"99999999n", 99999999, true},
		{"0m", 1, true},                               // already expired, not "none"
		{"99999999H", time.Duration(1<<63 - 1), true}, // saturates
		{"", 0, false},
		{"m", 0, false},
		{"10", 0, false},
		{"10s", 0, false}, // units are case-sensitive
		{"123456789S", 0, false},
		{"-1S", 0, false},
		{"1.5S", 0, false},
	} {
		got, ok := parseGRPCTimeout(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("parseGRPCTimeout(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
	h := http.Header{"Grpc-Timeout": {"3S"}}
	if d := grpcTimeout(h, 0); d != 3*time.Second {
		t.Errorf("no route timeout: %v", d)
	}
	if d := grpcTimeout(h, time.Second); d != time.Second {
		t.Errorf("route timeout smaller: %v", d)
	}
	if d := grpcTimeout(h, 10*time.Second); d != 3*time.Second {
		t.Errorf("grpc-timeout smaller: %v", d)
	}
	if d := grpcTimeout(http.Header{"Grpc-Timeout": {"soon"}}, 7); d != 7 {
		t.Errorf("malformed header must be ignored: %v", d)
	}
	if n := testing.AllocsPerRun(100, func() { _ = grpcTimeout(h, 0) }); n != 0 {
		t.Errorf("grpcTimeout allocates %v times", n)
	}
}

func TestGRPCCode(t *testing.T) {
	for code, want := range map[int]int{
		400: grpcInternal, 401: grpcUnauthenticated, 403: grpcPermissionDenied, 404: grpcUnimplemented,
		413: grpcResourceExhausted, 429: grpcUnavailable, 500: grpcUnavailable, 502: grpcUnavailable,
		503: grpcUnavailable, 504: grpcDeadlineExceeded, 418: grpcUnknown,
	} {
		if got := grpcCode(code); got != want {
			t.Errorf("grpcCode(%d) = %d, want %d", code, got, want)
		}
	}
}

// h2cClient speaks HTTP/2 with prior knowledge, as gRPC clients do.
func h2cClient(t *testing.T) *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// h2cBackend starts an h2c server closed at cleanup.
func h2cBackend(t *testing.T, h http.HandlerFunc) *httptest.Server {
	s := httptest.NewUnstartedServer(h)
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	p.SetHTTP1(true)
	s.Config.Protocols = &p
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// grpcCall posts an empty gRPC message to path and returns the response
// with its body read (so that trailers are in).
func grpcCall(t *testing.T, c *http.Client, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader("\x00\x00\x00\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(b)
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

func grpcRoute(name, path string, backends ...*ir.Backend) *ir.Route {
	r := prefixRoute(name, path, backends...)
	r.GRPC = true
	return r
}

func TestGRPCLocalReplies(t *testing.T) {
	stalled := make(chan struct{})
	t.Cleanup(func() { close(stalled) })
	slow := h2cBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select { // answers only when the proxy gives up (or at cleanup)
		case <-r.Context().Done():
		case <-stalled:
		}
	})
	echo := h2cBackend(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		w.Header().Set("X-Proto", r.Proto)
		w.WriteHeader(200)
		_, _ = io.WriteString(w, "\x00\x00\x00\x00\x00")
		w.Header().Set("Grpc-Status", "0")
	})
	slowC := cluster("slow", slow.URL)
	slowC.Protocol = ir.UpstreamH2C
	echoC := cluster("echo", echo.URL)
	echoC.Protocol = ir.UpstreamH2C
	timed := grpcRoute("timed", "/timed.Svc", backend("slow", 1))
	timed.Timeouts.Request = ir.Duration(300 * time.Millisecond)
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{
		grpcRoute("ok", "/ok.Svc", backend("echo", 1)),
		grpcRoute("empty", "/empty.Svc", backend("none", 1)),
		grpcRoute("down", "/down.Svc", backend("down", 1)),
		grpcRoute("invalid", "/invalid.Svc", &ir.Backend{Cluster: "", Weight: 1, Name: "bad"}),
		grpcRoute("noBackends", "/nobackends.Svc"),
		grpcRoute("slow", "/slow.Svc", backend("slow", 1)),
		timed,
		prefixRoute("http", "/http.Svc", backend("none", 1)),
	}, echoC, slowC, cluster("none"), cluster("down", closedAddr(t))))
	base := e.url("main")
	c := h2cClient(t)

	for _, tc := range []struct {
		name, path string
		hdr        map[string]string
		status     string
	}{
		{"no route", "/unknown.Svc/Call", nil, "12"},
		{"no endpoint", "/empty.Svc/Call", nil, "14"},
		{"connect failure", "/down.Svc/Call", nil, "14"},
		{"invalid backend", "/invalid.Svc/Call", nil, "14"},
		{"no backends", "/nobackends.Svc/Call", nil, "14"},
		{"grpc-timeout", "/slow.Svc/Call", map[string]string{"Grpc-Timeout": "200m"}, "4"},
		{"route timeout below grpc-timeout", "/timed.Svc/Call", map[string]string{"Grpc-Timeout": "1H"}, "4"},
		{"HTTPRoute, gRPC request", "/http.Svc/Call", nil, "14"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			resp, body := grpcCall(t, c, base+tc.path, tc.hdr)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/grpc" {
				t.Fatalf("got %d %q, want a 200 application/grpc trailers-only response", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if got := resp.Header.Get("Grpc-Status"); got != tc.status {
				t.Errorf("grpc-status %q (message %q), want %s", got, resp.Header.Get("Grpc-Message"), tc.status)
			}
			if resp.Header.Get("Grpc-Message") == "" {
				t.Error("no grpc-message")
			}
			if body != "" || len(resp.Trailer) != 0 {
				t.Errorf("trailers-only response has body %q and trailers %v", body, resp.Trailer)
			}
			if tc.hdr != nil && time.Since(start) > 5*time.Second {
				t.Errorf("deadline answered after %v", time.Since(start))
			}
		})
	}

	t.Run("grpc-timeout bounds the wait", func(t *testing.T) {
		start := time.Now()
		resp, _ := grpcCall(t, c, base+"/slow.Svc/Call", map[string]string{"Grpc-Timeout": "300m"})
		if d := time.Since(start); d < 300*time.Millisecond || resp.Header.Get("Grpc-Status") != "4" {
			t.Errorf("answered %s after %v, want DEADLINE_EXCEEDED after at least 300ms", resp.Header.Get("Grpc-Status"), d)
		}
	})

	t.Run("passes through", func(t *testing.T) {
		resp, body := grpcCall(t, c, base+"/ok.Svc/Call", nil)
		if resp.StatusCode != 200 || body != "\x00\x00\x00\x00\x00" || resp.Trailer.Get("Grpc-Status") != "0" {
			t.Errorf("got %d %q trailers %v", resp.StatusCode, body, resp.Trailer)
		}
		if p := resp.Header.Get("X-Proto"); p != "HTTP/2.0" {
			t.Errorf("upstream saw %s, want HTTP/2.0", p)
		}
	})

	t.Run("plain HTTP keeps HTTP errors", func(t *testing.T) {
		code, body, resp := get(t, client(t), http.MethodGet, base+"/unknown", nil)
		if code != 404 || resp.Header.Get("Grpc-Status") != "" || !strings.Contains(body, "no matching route") {
			t.Errorf("got %d %q %v", code, body, resp.Header)
		}
	})
}

func TestIsGRPC(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/grpc":               true,
		"application/grpc+proto":         true,
		"application/grpc;charset=utf-8": true,
		"application/grpc-web":           false,
		"application/grpcx":              false,
		"application/json":               false,
		"":                               false,
	} {
		r := &http.Request{Header: http.Header{}}
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		if got := isGRPC(r); got != want {
			t.Errorf("isGRPC(%q) = %v", ct, got)
		}
	}
}
