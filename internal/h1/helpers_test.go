package h1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// serveH1 runs s on a loopback listener until the test ends.
func serveH1(t testing.TB, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != ErrServerClosed {
			t.Errorf("Serve returned %v", err)
		}
	})
	return ln.Addr().String()
}

// serveStd runs a net/http server with h on a loopback listener.
func serveStd(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ErrorLog: nil}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends raw on a new connection and reads one response per
// method in methods (interim 1xx responses skipped). It also reports
// whether the server closed the connection afterwards, when closed is
// asked for.
func exchange(t testing.TB, addr, raw string, methods ...string) []*http.Response {
	t.Helper()
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for _, m := range methods {
		resp, err := readResponse(br, m)
		if err != nil {
			t.Fatalf("response %d to %q: %v", len(out), raw, err)
		}
		out = append(out, resp)
	}
	return out
}

// readResponse reads a response and its body (kept in resp.Body as a
// re-readable string reader), skipping 1xx.
func readResponse(br *bufio.Reader, method string) (*http.Response, error) {
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != 101 {
			continue
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		resp.ContentLength = int64(len(b))
		return resp, nil
	}
}

func bodyOf(r *http.Response) string {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(strings.NewReader(string(b)))
	return string(b)
}

// describe renders a response for comparison: status, sorted headers
// without Date, body, trailers.
func describe(r *http.Response) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d close=%v\n", r.Proto, r.StatusCode, r.Close)
	writeSorted(&b, r.Header, "Date")
	fmt.Fprintf(&b, "te=%v\n--\n%s\n--\n", r.TransferEncoding, bodyOf(r))
	writeSorted(&b, r.Trailer, "")
	return b.String()
}

func writeSorted(b *strings.Builder, h http.Header, skip string) {
	keys := make([]string, 0, len(h))
	for k := range h {
		if k != skip {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(b, "%s: %q\n", k, h[k])
	}
}

// waitEOF reads until the server closes c; it fails on a timeout.
func waitEOF(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("connection not closed by the server")
	}
}

// eventually polls cond for up to 10 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
		runtime.Gosched()
	}
}
