package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"causeway.dev/causeway/internal/ir"
)

// newH2CBackend serves h2c (HTTP/2 with prior knowledge) only.
func newH2CBackend(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &p}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestH2C(t *testing.T) {
	checkLeaks(t)
	addr := newH2CBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			http.Error(w, "not HTTP/2: "+r.Proto, 400)
			return
		}
		// Echo line by line, flushing each, so the client can interleave.
		w.Header().Set("Trailer", "X-Lines")
		w.Header().Set("X-Host", r.Host)
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		sc := bufio.NewScanner(r.Body)
		n := 0
		for sc.Scan() {
			n++
			fmt.Fprintf(w, "echo %s\n", sc.Text())
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Lines", fmt.Sprint(n))
	}))
	m := newManager(t, Options{}, &ir.Cluster{Name: "g", Protocol: ir.UpstreamH2C, Endpoints: []ir.Endpoint{{Address: addr}}})
	c := m.Cluster("g")
	for round := range 2 { // the second round reuses the HTTP/2 connection
		pr, pw := io.Pipe()
		req := newReq(context.Background(), "POST", "/stream", pr)
		req.Host = "grpc.example"
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("status %d proto %s: %s", resp.StatusCode, resp.Proto, b)
		}
		if h := resp.Header.Get("X-Host"); h != "grpc.example" {
			t.Errorf("server saw Host %q", h)
		}
		br := bufio.NewReader(resp.Body)
		for i := range 3 { // both directions stream: each line's echo arrives before the next is sent
			fmt.Fprintf(pw, "%d-%d\n", round, i)
			line, err := br.ReadString('\n')
			if want := fmt.Sprintf("echo %d-%d\n", round, i); err != nil || line != want {
				t.Fatalf("got %q %v, want %q", line, err, want)
			}
		}
		pw.Close()
		if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
			t.Fatalf("rest %q %v", rest, err)
		}
		resp.Body.Close()
		if got := resp.Trailer.Get("X-Lines"); got != "3" {
			t.Errorf("trailer X-Lines = %q, want 3", got)
		}
	}
}

func TestH2CConnectErrors(t *testing.T) {
	checkLeaks(t)
	addr := newH2CBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) }))
	dead := refusedAddr(t)
	m := newManager(t, Options{},
		&ir.Cluster{Name: "dead", Protocol: ir.UpstreamH2C, Endpoints: []ir.Endpoint{{Address: dead}}},
		&ir.Cluster{Name: "mixed", Protocol: ir.UpstreamH2C, Endpoints: []ir.Endpoint{{Address: dead}, {Address: addr}}})
	if _, err := m.Cluster("dead").RoundTrip(newReq(context.Background(), "GET", "/", nil)); !errors.Is(err, ErrConnect) {
		t.Fatalf("err = %v, want ErrConnect", err)
	}
	for range 4 {
		resp, err := m.Cluster("mixed").RoundTrip(newReq(context.Background(), "GET", "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "HTTP/2.0" {
			t.Fatalf("got %q", b)
		}
	}
	m.Close() // h2c connections close with the manager
}
