package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/telemetry"
)

// syncBuffer is a bytes.Buffer safe for the access log's flusher.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func TestAccessLogAndMetrics(t *testing.T) {
	be := textBackend(t, "hello")
	var buf syncBuffer
	al := telemetry.NewAccessLog(&buf)
	m := telemetry.NewMetrics()
	e := newEnv(t, Options{AccessLog: al, Metrics: m})
	e.apply(config([]*ir.Route{prefixRoute("httproute/default/app/rule/0/match/0", "/app", backend("be", 1))}, cluster("be", be.URL)))
	c := client(t)
	get(t, c, "GET", e.url("main")+"/app/x", map[string]string{"Host": "h.example"})
	resp, err := c.Post(e.url("main")+"/app/y", "text/plain", strings.NewReader("12345"))
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	get(t, c, "GET", e.url("main")+"/nope", nil)
	if err := al.Close(); err != nil {
		t.Fatal(err)
	}

	var entries []map[string]any
	for line := range strings.Lines(buf.b.String()) {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		entries = append(entries, v)
	}
	if len(entries) != 3 {
		t.Fatalf("%d log lines, want 3:\n%s", len(entries), buf.b.String())
	}
	first, post, nr := entries[0], entries[1], entries[2]
	if first["path"] != "/app/x" || first["authority"] != "h.example" || first["status"] != 200.0 ||
		first["route"] != "httproute/default/app/rule/0/match/0" || first["gateway"] != "default/gw" ||
		first["bytes_out"] != 5.0 || first["request_id"] == "" || first["protocol"] != "HTTP/1.1" {
		t.Errorf("first entry: %v", first)
	}
	if post["bytes_in"] != 5.0 || post["method"] != "POST" {
		t.Errorf("post entry: %v", post)
	}
	if nr["status"] != 404.0 || nr["flags"] != "NR" {
		t.Errorf("no-route entry: %v", nr)
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	text := rec.Body.String()
	for _, want := range []string{
		`causeway_http_requests_total{backend="be-be",code_class="2xx",gateway="default/gw",route="httproute/default/app/rule/0/match/0"} 2`,
		`causeway_http_request_bytes_total{backend="be-be",gateway="default/gw",route="httproute/default/app/rule/0/match/0"} 5`,
		`causeway_downstream_connections_total{listener="main"}`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestClientGoneCancelsUpstream(t *testing.T) {
	arrived := make(chan struct{}, 1)
	cancelled := make(chan struct{}, 1)
	be := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
		cancelled <- struct{}{}
	})
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL)))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url("main")+"/", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := client(t).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-arrived
	cancel()
	if err := <-errc; err == nil {
		t.Error("cancelled request succeeded")
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("upstream request not cancelled when the client went away")
	}
}

func TestResponseHopByHop(t *testing.T) {
	be := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=1")
		w.Header().Set("X-End", "1")
	})
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL)))
	_, _, resp := get(t, client(t), "GET", e.url("main")+"/", nil)
	if resp.Header.Get("X-Hop") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("X-End") != "1" {
		t.Errorf("response headers: %v", resp.Header)
	}
}

func TestMaxConnections(t *testing.T) {
	be := textBackend(t, "ok")
	e := newEnv(t, Options{MaxConnections: 1})
	e.apply(config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL)))
	addr := e.p.Addr("main").String()
	roundTrip := func(c net.Conn, br *bufio.Reader) error {
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}
	c1, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(c1, bufio.NewReader(c1)); err != nil {
		t.Fatal(err)
	}
	// The second connection is queued by the kernel but not accepted.
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	done := make(chan error, 1)
	go func() { done <- roundTrip(c2, bufio.NewReader(c2)) }()
	select {
	case err := <-done:
		t.Fatalf("second connection served while the first is open (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	c1.Close()
	if err := <-done; err != nil {
		t.Fatalf("second connection after the first closed: %v", err)
	}
}
