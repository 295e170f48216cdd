package upstream

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
)

func hello(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello "+r.URL.RequestURI()) }

func TestKeepAliveReuse(t *testing.T) {
	checkLeaks(t)
	b := newBackend(t, http.HandlerFunc(hello))
	m := newManager(t, Options{}, h1Cluster("c", b.addr()))
	c := m.Cluster("c")
	for i := range 100 {
		want := fmt.Sprintf("hello /p/%d?q=%d", i, i)
		if got := do(t, c, fmt.Sprintf("/p/%d?q=%d", i, i)); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if n := b.conns.Load(); n != 1 {
		t.Errorf("100 sequential requests used %d connections, want 1", n)
	}
}

func TestConcurrent(t *testing.T) {
	checkLeaks(t)
	b := newBackend(t, http.HandlerFunc(hello))
	m := newManager(t, Options{}, h1Cluster("c", b.addr()))
	c := m.Cluster("c")
	const workers, each = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				target := fmt.Sprintf("/w%d/%d", w, i)
				resp, err := c.RoundTrip(newReq(context.Background(), "GET", target, nil))
				if err != nil {
					errs <- err
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(body) != "hello "+target {
					errs <- fmt.Errorf("%s: body %q, err %v", target, body, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := b.conns.Load(); n > workers {
		t.Errorf("%d connections for %d concurrent workers", n, workers)
	}
}

// sumHandler answers with the body's length, SHA-256, transfer encoding
// and the X-Sum trailer.
func sumHandler(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	fmt.Fprintf(w, "%d %x %v %s", n, h.Sum(nil), r.TransferEncoding, r.Trailer.Get("X-Sum"))
}

// trailerBody sets a trailer value when it reaches EOF, as a server-side
// request body does.
type trailerBody struct {
	r       io.Reader
	trailer http.Header
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.trailer.Set("X-Sum", "done")
	}
	return n, err
}
func (b *trailerBody) Close() error { return nil }

func TestRequestBodies(t *testing.T) {
	checkLeaks(t)
	b := newBackend(t, http.HandlerFunc(sumHandler))
	m := newManager(t, Options{}, h1Cluster("c", b.addr()))
	c := m.Cluster("c")
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	small, large := "small body", strings.Repeat("0123456789", 100_000)
	for _, tc := range []struct {
		name    string
		body    func() io.Reader
		length  int64 // -1 forces chunked
		trailer bool
		want    string
	}{
		{"none", nil, 0, false, fmt.Sprintf("0 %s [] ", sum(""))},
		{"small known length", func() io.Reader { return strings.NewReader(small) }, int64(len(small)), false, fmt.Sprintf("%d %s [] ", len(small), sum(small))},
		{"large known length", func() io.Reader { return strings.NewReader(large) }, int64(len(large)), false, fmt.Sprintf("%d %s [] ", len(large), sum(large))},
		{"chunked", func() io.Reader { return strings.NewReader(large) }, -1, false, fmt.Sprintf("%d %s [chunked] ", len(large), sum(large))},
		{"chunked with trailer", func() io.Reader { return strings.NewReader(small) }, -1, true, fmt.Sprintf("%d %s [chunked] done", len(small), sum(small))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := newReq(context.Background(), "POST", "/sum", nil)
			if tc.body != nil {
				body := &oneShot{Reader: tc.body()}
				req.Body, req.ContentLength = body, tc.length
				if tc.trailer {
					req.Trailer = http.Header{"X-Sum": nil}
					req.Body = &trailerBody{r: body, trailer: req.Trailer}
				}
			}
			resp, err := c.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q (%v), want %q", got, err, tc.want)
			}
		})
	}
	if n := b.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestResponseKinds(t *testing.T) {
	checkLeaks(t)
	b := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/head":
			w.Header().Set("Content-Length", "1234")
		case "/204":
			w.WriteHeader(204)
		case "/304":
			w.WriteHeader(304)
		case "/trailer":
			w.Header().Set("Trailer", "X-Checksum")
			w.WriteHeader(200)
			io.WriteString(w, "streamed")
			w.(http.Flusher).Flush()
			w.Header().Set("X-Checksum", "abc")
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/eof": // no length: the body ends when the server closes
			conn, brw, _ := http.NewResponseController(w).Hijack()
			brw.WriteString("HTTP/1.1 200 OK\r\n\r\nuntil close")
			brw.Flush()
			conn.Close()
		case "/continue":
			w.WriteHeader(103)
			io.WriteString(w, "final")
		}
	}))
	m := newManager(t, Options{}, h1Cluster("c", b.addr()))
	c := m.Cluster("c")
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
		trailer      string
	}{
		{"HEAD", "/head", 200, "", ""},
		{"GET", "/204", 204, "", ""},
		{"GET", "/304", 304, "", ""},
		{"GET", "/trailer", 200, "streamed", "abc"},
		{"GET", "/close", 200, "bye", ""},
		{"GET", "/eof", 200, "until close", ""},
		{"GET", "/continue", 200, "final", ""},
		{"GET", "/204", 204, "", ""},
	} {
		resp, err := c.RoundTrip(newReq(context.Background(), tc.method, tc.path, nil))
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.status || string(body) != tc.body || resp.Trailer.Get("X-Checksum") != tc.trailer {
			t.Errorf("%s %s: %d %q trailer %q err %v; want %d %q %q", tc.method, tc.path,
				resp.StatusCode, body, resp.Trailer.Get("X-Checksum"), err, tc.status, tc.body, tc.trailer)
		}
	}
	// /close and /eof end their connections; everything else reuses.
	if n := b.conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
}

func TestLargeStreaming(t *testing.T) {
	checkLeaks(t)
	const size = 512 << 20
	b := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil || n != size {
			http.Error(w, fmt.Sprintf("got %d bytes: %v", n, err), 400)
			return
		}
		io.Copy(w, &pattern{limit: size})
	}))
	m := newManager(t, Options{}, h1Cluster("c", b.addr()))
	req := newReq(context.Background(), "PUT", "/big", nil)
	req.Body, req.ContentLength = &oneShot{Reader: &pattern{limit: size}}, -1
	resp, err := m.Cluster("c").RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, msg)
	}
	var got int64
	var maxHeap uint64
	buf := make([]byte, 32<<10)
	for next := int64(0); ; {
		n, err := resp.Body.Read(buf)
		got += int64(n)
		if got >= next {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			maxHeap = max(maxHeap, ms.HeapInuse)
			next += 64 << 20
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if got != size {
		t.Fatalf("response: %d bytes, want %d", got, size)
	}
	if maxHeap > 64<<20 {
		t.Errorf("heap in use reached %d MiB while streaming", maxHeap>>20)
	}
}

// Regression guard for the synchronous design: a full-duplex server that
// streams its answer while reading must not deadlock a large upload.
func TestFullDuplexEcho(t *testing.T) {
	checkLeaks(t)
	b := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		io.Copy(w, r.Body)
	}))
	m := newManager(t, Options{}, h1Cluster("c", b.addr()))
	const size = 32 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := newReq(ctx, "POST", "/echo", nil)
	req.Body, req.ContentLength = &oneShot{Reader: &pattern{limit: size}}, size
	resp, err := m.Cluster("c").RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		t.Fatalf("echoed %d bytes, err %v", n, err)
	}
}

func TestUpgrade(t *testing.T) {
	checkLeaks(t)
	b := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" || r.Header.Get("Connection") != "Upgrade" {
			hello(w, r)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw)
	}))
	m := newManager(t, Options{}, h1Cluster("c", b.addr()))
	c := m.Cluster("c")
	do(t, c, "/warm") // a pooled connection the upgrade may take
	req := newReq(context.Background(), "GET", "/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rw, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("101 body %T is not an io.ReadWriteCloser", resp.Body)
	}
	br := bufio.NewReader(rw)
	for i := range 3 {
		msg := fmt.Sprintf("ping %d\n", i)
		if _, err := io.WriteString(rw, msg); err != nil {
			t.Fatal(err)
		}
		line, err := br.ReadString('\n')
		if err != nil || line != msg {
			t.Fatalf("echo: %q %v", line, err)
		}
	}
	rw.Close()
	b.waitClosed(t, 1) // hijacked
	// The upgraded connection never returns to the pool.
	do(t, c, "/after")
	if n := b.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestUnixSocket(t *testing.T) {
	checkLeaks(t)
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "host="+r.Host)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	m := newManager(t, Options{}, &ir.Cluster{Name: "u", Protocol: ir.UpstreamHTTP1, Endpoints: []ir.Endpoint{{Unix: path}}})
	req := newReq(context.Background(), "GET", "/", nil)
	req.Host = "app.example"
	resp, err := m.Cluster("u").RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "host=app.example" {
		t.Errorf("got %q", body)
	}
}

func TestHostnameEndpoint(t *testing.T) {
	checkLeaks(t)
	b := newBackend(t, http.HandlerFunc(hello))
	_, port, _ := net.SplitHostPort(b.addr())
	p, _ := strconv.Atoi(port)
	m := newManager(t, Options{ResolveInterval: 50 * time.Millisecond},
		&ir.Cluster{Name: "h", Endpoints: []ir.Endpoint{{Hostname: "localhost", Port: p}}})
	c := m.Cluster("h")
	eps := c.state.Load().eps
	if len(eps) == 0 {
		t.Fatal("localhost resolved to no endpoint")
	}
	found := false
	for _, e := range eps {
		found = found || e.addr == b.addr()
	}
	if !found {
		t.Fatalf("no endpoint %s among %d", b.addr(), len(eps))
	}
	// localhost may also be ::1, where nothing listens: the connect
	// failure there moves on to 127.0.0.1.
	for i := range 10 {
		if got := do(t, c, fmt.Sprintf("/%d", i)); got != fmt.Sprintf("hello /%d", i) {
			t.Fatalf("got %q", got)
		}
	}
}

func TestStaleConnectionRetry(t *testing.T) {
	checkLeaks(t)
	b := newBackend(t, http.HandlerFunc(sumHandler))
	m := newManager(t, Options{}, h1Cluster("c", b.addr()))
	c := m.Cluster("c")
	for i, tc := range []struct {
		name string
		body func() io.ReadCloser
	}{
		{"no body", nil},
		{"body without GetBody", func() io.ReadCloser { return &oneShot{Reader: strings.NewReader("abc")} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			do(t, c, "/warm")
			b.CloseClientConnections() // the server drops the idle connection
			b.waitClosed(t, 1)
			req := newReq(context.Background(), "POST", "/", nil)
			want := "0 "
			if tc.body != nil {
				req.Body, req.ContentLength = tc.body(), 3
				want = "3 "
			}
			resp, err := c.RoundTrip(req)
			if err != nil {
				t.Fatalf("request on a stale connection: %v", err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.HasPrefix(string(got), want) {
				t.Errorf("got %q", got)
			}
			if n := b.conns.Load(); n != int64(i+2) { // warm reuses the last fresh one
				t.Errorf("%d connections, want %d", n, i+2)
			}
		})
	}
}

// blocker is a handler that writes "part" (optionally) and waits until the
// request is over.
func blocker(writeFirst bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if writeFirst {
			io.WriteString(w, "part")
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	}
}

func TestResponseHeaderTimeout(t *testing.T) {
	checkLeaks(t)
	b := newBackend(t, blocker(false))
	m := newManager(t, Options{}, h1Cluster("c", b.addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := m.Cluster("c").RoundTrip(newReq(ctx, "GET", "/", nil))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout took %v", d)
	}
}

func TestCancel(t *testing.T) {
	checkLeaks(t)
	t.Run("headers", func(t *testing.T) {
		b := newBackend(t, blocker(false))
		m := newManager(t, Options{}, h1Cluster("c", b.addr()))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() {
			_, err := m.Cluster("c").RoundTrip(newReq(ctx, "GET", "/", nil))
			done <- err
		}()
		for b.conns.Load() == 0 { // the request is on its way
			runtime.Gosched()
		}
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("RoundTrip did not return after cancel")
		}
	})
	t.Run("body", func(t *testing.T) {
		b := newBackend(t, blocker(true))
		m := newManager(t, Options{}, h1Cluster("c", b.addr()))
		ctx, cancel := context.WithCancel(context.Background())
		resp, err := m.Cluster("c").RoundTrip(newReq(ctx, "GET", "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 4)
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "part" {
			t.Fatalf("first part: %q %v", buf, err)
		}
		cancel()
		if _, err := resp.Body.Read(buf); !errors.Is(err, context.Canceled) {
			t.Fatalf("read after cancel: %v, want Canceled", err)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		b := newBackend(t, http.HandlerFunc(hello))
		m := newManager(t, Options{}, h1Cluster("c", b.addr()))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := m.Cluster("c").RoundTrip(newReq(ctx, "GET", "/", nil)); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want Canceled", err)
		}
	})
}

// refusedAddr returns a loopback address nobody listens on.
func refusedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestConnectErrors(t *testing.T) {
	checkLeaks(t)
	b := newBackend(t, http.HandlerFunc(hello))
	dead := refusedAddr(t)
	m := newManager(t, Options{},
		h1Cluster("dead", dead),
		h1Cluster("mixed", dead, b.addr()),
		h1Cluster("empty"))
	body := &oneShot{Reader: strings.NewReader("x")}
	req := newReq(context.Background(), "POST", "/", nil)
	req.Body, req.ContentLength = body, 1
	if _, err := m.Cluster("dead").RoundTrip(req); !errors.Is(err, ErrConnect) {
		t.Errorf("refused: err = %v, want ErrConnect", err)
	}
	if !body.closed {
		t.Error("request body not closed after a connect failure")
	}
	if _, err := m.Cluster("empty").RoundTrip(newReq(context.Background(), "GET", "/", nil)); !errors.Is(err, ErrNoEndpoint) {
		t.Errorf("empty: err = %v, want ErrNoEndpoint", err)
	}
	// Every request succeeds: the dead endpoint's turn falls to the other.
	for i := range 6 {
		do(t, m.Cluster("mixed"), fmt.Sprintf("/%d", i))
	}
	if m.Cluster("absent") != nil {
		t.Error("Cluster of an absent name is not nil")
	}
}

func TestUpdateKeepsPool(t *testing.T) {
	checkLeaks(t)
	b := newBackend(t, http.HandlerFunc(hello))
	other := newBackend(t, http.HandlerFunc(hello))
	m := newManager(t, Options{}, h1Cluster("c", b.addr()), h1Cluster("gone", other.addr()))
	old := m.Cluster("c")
	do(t, old, "/1")
	do(t, m.Cluster("gone"), "/1")
	m.Update([]*ir.Cluster{h1Cluster("c", b.addr()), h1Cluster("d", b.addr())})
	if m.Cluster("gone") != nil {
		t.Fatal("removed cluster still present")
	}
	other.waitClosed(t, 1) // the removed endpoint's idle connection is closed
	do(t, m.Cluster("c"), "/2")
	do(t, m.Cluster("d"), "/3")
	do(t, old, "/4") // a cluster from the old configuration still works
	if n := b.conns.Load(); n != 1 {
		t.Errorf("%d connections after reload, want 1", n)
	}
}

func TestIdleTimeout(t *testing.T) {
	checkLeaks(t)
	b := newBackend(t, http.HandlerFunc(hello))
	m := newManager(t, Options{IdleTimeout: 50 * time.Millisecond}, h1Cluster("c", b.addr()))
	do(t, m.Cluster("c"), "/")
	b.waitClosed(t, 1)
	do(t, m.Cluster("c"), "/")
	if n := b.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestCloseBeforeEOF(t *testing.T) {
	checkLeaks(t)
	big := strings.Repeat("y", 1<<20)
	b := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			io.WriteString(w, big)
			return
		}
		io.WriteString(w, "short")
	}))
	m := newManager(t, Options{}, h1Cluster("c", b.addr()))
	c := m.Cluster("c")
	for _, path := range []string{"/short", "/big"} {
		resp, err := c.RoundTrip(newReq(context.Background(), "GET", path, nil))
		if err != nil {
			t.Fatal(err)
		}
		if path == "/short" {
			// Let the whole small body arrive, unread, then close.
			if _, err := resp.Body.(*respBody).c.br.Peek(5); err != nil {
				t.Fatal(err)
			}
		}
		resp.Body.Close()
		if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
			t.Error("read after Close succeeded")
		}
	}
	// The short body was drained and its connection kept; the big one's
	// connection was closed.
	b.waitClosed(t, 1)
	do(t, c, "/short")
	if n := b.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestInvalidHeader(t *testing.T) {
	b := newBackend(t, http.HandlerFunc(hello))
	m := newManager(t, Options{}, h1Cluster("c", b.addr()))
	req := newReq(context.Background(), "GET", "/", nil)
	req.Header["X-Bad"] = []string{"a\r\nInjected: 1"}
	if _, err := m.Cluster("c").RoundTrip(req); err == nil {
		t.Fatal("header value with CRLF was sent")
	}
}

// A body read to its exact length without seeing EOF keeps its connection.
func TestCloseAtExactLength(t *testing.T) {
	checkLeaks(t)
	b := newBackend(t, http.HandlerFunc(hello))
	m := newManager(t, Options{}, h1Cluster("c", b.addr()))
	c := m.Cluster("c")
	for range 3 {
		resp, err := c.RoundTrip(newReq(context.Background(), "GET", "/x", nil))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, resp.ContentLength)
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "hello /x" {
			t.Fatalf("%q %v", buf, err)
		}
		resp.Body.Close()
	}
	if n := b.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}
