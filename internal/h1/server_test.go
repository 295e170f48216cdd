package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestKeepAliveClient(t *testing.T) {
	var conns sync.Map
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Store(r.RemoteAddr, true)
		io.WriteString(w, r.URL.Path)
	})}
	addr := serveH1(t, s)
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer cl.CloseIdleConnections()
	for i := range 20 {
		resp, err := cl.Get(fmt.Sprintf("http://%s/r%d", addr, i))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != fmt.Sprintf("/r%d", i) {
			t.Fatalf("body %q", b)
		}
	}
	n := 0
	conns.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("%d connections for 20 sequential requests, want 1", n)
	}
}

// TestChunkedBothWays streams a chunked request body in and a chunked
// response out, with trailers both ways.
func TestChunkedBothWays(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Count")
		w.WriteHeader(200)
		n, err := io.Copy(w, r.Body)
		if err != nil {
			t.Errorf("copy: %v", err)
		}
		w.Header().Set("X-Count", fmt.Sprint(n))
		w.Header().Set(http.TrailerPrefix+"X-In", r.Trailer.Get("X-In"))
	})}
	addr := serveH1(t, s)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", "http://"+addr+"/", pr)
	req.Trailer = http.Header{"X-In": nil}
	go func() {
		for i := range 100 {
			fmt.Fprintf(pw, "chunk %03d\n", i)
		}
		req.Trailer.Set("X-In", "in-value")
		pw.Close()
	}()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if len(b) != 1000 || !bytes.HasPrefix(b, []byte("chunk 000\n")) {
		t.Fatalf("body %d bytes: %.40q", len(b), b)
	}
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("transfer encoding %v", resp.TransferEncoding)
	}
	if resp.Trailer.Get("X-Count") != "1000" || resp.Trailer.Get("X-In") != "in-value" {
		t.Fatalf("trailers %v", resp.Trailer)
	}
}

// TestExpectContinue: the 100 is sent when the handler first reads, and
// not at all when it answers without reading (then the connection
// closes).
func TestExpectContinue(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reject" {
			w.WriteHeader(403)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})}
	addr := serveH1(t, s)

	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, crlf("PUT /ok HTTP/1.1", "Host: a", "Expect: 100-continue", "Content-Length: 5"))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("got %q, %v; want 100 Continue", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "hello")
	resp, err := readResponse(br, "PUT")
	if err != nil || resp.StatusCode != 200 || bodyOf(resp) != "hello" || resp.Close {
		t.Fatalf("resp %v err %v", resp, err)
	}

	c2 := dial(t, addr)
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c2, crlf("PUT /reject HTTP/1.1", "Host: a", "Expect: 100-continue", "Content-Length: 5"))
	resp, err = readResponse(bufio.NewReader(c2), "PUT")
	if err != nil || resp.StatusCode != 403 || !resp.Close {
		t.Fatalf("resp %+v err %v; want 403 with close", resp, err)
	}
	waitEOF(t, c2)
}

// TestHijack upgrades a connection: bytes pipelined after the request
// must reach the hijacker through the returned reader.
func TestHijack(t *testing.T) {
	var states []http.ConnState
	var mu sync.Mutex
	s := &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			buf := make([]byte, 11)
			if _, err := io.ReadFull(brw, buf); err != nil {
				t.Errorf("read: %v", err)
				return
			}
			conn.Write(bytes.ToUpper(buf))
		}),
		ConnState: func(_ net.Conn, st http.ConnState) {
			mu.Lock()
			states = append(states, st)
			mu.Unlock()
		},
	}
	addr := serveH1(t, s)
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// "early bytes" arrives with the request: it sits in the server's
	// buffer when the handler hijacks.
	io.WriteString(c, crlf("GET /ws HTTP/1.1", "Host: a", "Upgrade: echo", "Connection: Upgrade")+"early ")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("resp %v err %v", resp, err)
	}
	io.WriteString(c, "bytes")
	got, _ := io.ReadAll(br)
	if string(got) != "EARLY BYTES" {
		t.Fatalf("echo %q", got)
	}
	eventually(t, "hijacked state", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(states) > 0 && states[len(states)-1] == http.StateHijacked
	})
	mu.Lock()
	defer mu.Unlock()
	want := []http.ConnState{http.StateNew, http.StateActive, http.StateHijacked}
	if fmt.Sprint(states) != fmt.Sprint(want) {
		t.Fatalf("states %v, want %v", states, want)
	}
}

// TestFlushEventStream: flushed events reach the client while the
// handler still runs.
func TestFlushEventStream(t *testing.T) {
	next := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	})}
	addr := serveH1(t, s)
	resp, err := http.Get("http://" + addr + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		br.ReadString('\n')
		next <- struct{}{}
	}
}

// TestDisconnectCancels: a long request without a body learns that its
// client went away through r.Context().
func TestDisconnectCancels(t *testing.T) {
	started := make(chan struct{})
	cause := make(chan error, 1)
	s := &Server{
		DisconnectCheck: 50 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			select {
			case <-r.Context().Done():
				cause <- context.Cause(r.Context())
			case <-time.After(20 * time.Second):
				cause <- nil
			}
		}),
	}
	addr := serveH1(t, s)
	c := dial(t, addr)
	io.WriteString(c, crlf("GET /poll HTTP/1.1", "Host: a"))
	<-started
	c.Close()
	if err := <-cause; !errors.Is(err, errClientGone) {
		t.Fatalf("cause %v, want client gone", err)
	}
}

// TestWatchKeepsPipelinedRequest: the disconnect watch must not lose a
// request the client pipelined behind a long one, even a partial one
// (regression: the watch's expired deadline then failed the header read).
func TestWatchKeepsPipelinedRequest(t *testing.T) {
	release := make(chan struct{})
	s := &Server{
		DisconnectCheck: 20 * time.Millisecond,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				<-release
			}
			io.WriteString(w, r.URL.Path)
		}),
	}
	addr := serveH1(t, s)
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, crlf("GET /slow HTTP/1.1", "Host: a"))
	eventually(t, "disconnect watch", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for cn := range s.conns {
			if cn.watch.Load()&watchOn != 0 {
				return true
			}
		}
		return false
	})
	io.WriteString(c, "GET /next HTTP/1.1\r\nHo")
	time.Sleep(50 * time.Millisecond) // lets the watcher read it; the test holds either way
	close(release)
	br := bufio.NewReader(c)
	resp, err := readResponse(br, "GET")
	if err != nil || bodyOf(resp) != "/slow" {
		t.Fatalf("want /slow: %v %v", resp, err)
	}
	io.WriteString(c, "st: a\r\n\r\n")
	resp, err = readResponse(br, "GET")
	if err != nil || bodyOf(resp) != "/next" {
		t.Fatalf("want /next: %v %v", resp, err)
	}
}

func TestShutdownDrains(t *testing.T) {
	inHandler := make(chan struct{})
	release := make(chan struct{})
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(inHandler)
			<-release
		}
		io.WriteString(w, "done")
	})}
	addr := serveH1(t, s)

	idle := dial(t, addr)
	idle.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(idle, crlf("GET / HTTP/1.1", "Host: a"))
	ibr := bufio.NewReader(idle)
	if _, err := readResponse(ibr, "GET"); err != nil {
		t.Fatal(err)
	}

	busy := dial(t, addr)
	busy.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(busy, crlf("GET /slow HTTP/1.1", "Host: a"))
	<-inHandler

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	waitEOF(t, idle) // the idle connection goes at once
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}
	close(release)
	resp, err := readResponse(bufio.NewReader(busy), "GET")
	if err != nil || bodyOf(resp) != "done" || !resp.Close {
		t.Fatalf("in-flight response %v %v; want done with close", resp, err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("listener still open after Shutdown")
	}
	// A connection handed to ServeConn after Shutdown is refused.
	a, b := net.Pipe()
	defer a.Close()
	go s.ServeConn(b)
	a.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := a.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read on a refused connection: %v", err)
	}
}

func TestShutdownDeadline(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})}
	addr := serveH1(t, s)
	c := dial(t, addr)
	io.WriteString(c, crlf("GET / HTTP/1.1", "Host: a"))
	eventually(t, "request active", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for cn := range s.conns {
			if cn.state.Load() == stateActive {
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	waitEOF(t, c)
}

func TestIdleTimeout(t *testing.T) {
	s := &Server{IdleTimeout: 100 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	addr := serveH1(t, s)
	c := dial(t, addr)
	io.WriteString(c, crlf("GET / HTTP/1.1", "Host: a"))
	br := bufio.NewReader(c)
	if _, err := readResponse(br, "GET"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitEOF(t, c)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("closed after %v, before the idle timeout", d)
	}
}

// TestSlowloris: a header trickling in is cut at ReadHeaderTimeout.
func TestSlowloris(t *testing.T) {
	s := &Server{ReadHeaderTimeout: 100 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("handler called")
	})}
	addr := serveH1(t, s)
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				if _, err := io.WriteString(c, "a"); err != nil {
					return
				}
			}
		}
	}()
	waitEOF(t, c)
}

func TestLeadingCRLF(t *testing.T) {
	addr := serveH1(t, &Server{Handler: http.HandlerFunc(echo)})
	resp := exchange(t, addr, "\r\n\r\n"+crlf("GET /x HTTP/1.1", "Host: a"), "GET")[0]
	if resp.StatusCode != 200 || !strings.Contains(bodyOf(resp), `"/x"`) {
		t.Fatalf("%d %q", resp.StatusCode, bodyOf(resp))
	}
}

// TestPanic: a panicking handler costs its connection, not the server.
func TestPanic(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/abort" {
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, "ok")
	})}
	addr := serveH1(t, s)
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, crlf("GET /abort HTTP/1.1", "Host: a"))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("truncated body read without error")
	}
	resp2 := exchange(t, addr, crlf("GET / HTTP/1.1", "Host: a"), "GET")[0]
	if bodyOf(resp2) != "ok" {
		t.Fatal("server broken after a panic")
	}
}

// TestH2CPriorKnowledge hands a connection that starts with the HTTP/2
// preface to net/http through HTTP2.
func TestH2CPriorKnowledge(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	})
	h2 := NewHTTP2(&http.Server{Handler: h})
	defer h2.Shutdown(context.Background())
	var closed atomic.Int32
	s := &Server{Handler: h, H2C: h2.ServeConn, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			closed.Add(1)
		}
	}}
	addr := serveH1(t, s)
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: p}
	defer tr.CloseIdleConnections()
	for range 3 {
		resp, err := (&http.Client{Transport: tr}).Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "HTTP/2.0" {
			t.Fatalf("proto %q", b)
		}
	}
	// HTTP/1.1 still works on the same server.
	r1 := exchange(t, addr, crlf("GET / HTTP/1.1", "Host: a"), "GET")[0]
	if bodyOf(r1) != "HTTP/1.1" {
		t.Fatalf("h1 proto %q", bodyOf(r1))
	}
	// The handed-off connection ends ServeConn when the client closes it.
	tr.CloseIdleConnections()
	eventually(t, "h2c connection released", func() bool { return closed.Load() == 1 })
}

// TestTLS serves HTTP/1.1 over TLS, with r.TLS set, and hands "h2" to H2.
func TestTLS(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s tls=%v", r.Proto, r.TLS != nil)
	})
	h2 := NewHTTP2(&http.Server{Handler: h})
	defer h2.Shutdown(context.Background())
	s := &Server{Handler: h, H2: h2.ServeConn}
	ts := httptest.NewUnstartedServer(h)
	ts.EnableHTTP2 = true
	ts.StartTLS() // only for its certificate and client
	ts.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln := tls.NewListener(ln, &tls.Config{Certificates: ts.TLS.Certificates, NextProtos: []string{"h2", "http/1.1"}})
	go func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			go s.ServeConn(c)
		}
	}()
	defer func() { ln.Close(); s.Close() }()
	for _, h2 := range []bool{false, true} {
		tr := ts.Client().Transport.(*http.Transport).Clone()
		tr.ForceAttemptHTTP2 = h2
		if !h2 {
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
		resp, err := (&http.Client{Transport: tr}).Get("https://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		want := "HTTP/1.1 tls=true"
		if h2 {
			want = "HTTP/2.0 tls=true"
		}
		if string(b) != want {
			t.Fatalf("got %q want %q", b, want)
		}
	}
	eventually(t, "connections released", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.conns) == 0
	})
}

// TestRequestReuse: nothing of one request leaks into the next on the
// same connection.
func TestRequestReuse(t *testing.T) {
	var seen []string
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, fmt.Sprintf("%s %s %v %q %v", r.Method, r.URL, r.Header, r.Host, r.Trailer))
		r.Header.Set("X-Mutated", "1")
		w.Header().Set("X-Resp", r.URL.Path)
	})}
	addr := serveH1(t, s)
	raw := "POST /a HTTP/1.1\r\nHost: h1\r\nX-A: 1\r\nTrailer: X-T\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: v\r\n\r\n" +
		crlf("GET /b?q HTTP/1.1", "Host: h2")
	rs := exchange(t, addr, raw, "POST", "GET")
	if rs[1].Header.Get("X-Resp") != "/b" || len(rs[1].Header["X-Resp"]) != 1 {
		t.Fatalf("response header leaked: %v", rs[1].Header)
	}
	want := []string{
		`POST /a map[X-A:[1]] "h1" map[X-T:[]]`,
		`GET /b?q map[] "h2" map[]`,
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("requests\n%q\nwant\n%q", seen, want)
	}
}

// TestUnreadBodyTooLarge: a large unread body closes the connection
// (announced with Connection: close), a small one is drained.
func TestUnreadBodyTooLarge(t *testing.T) {
	addr := serveH1(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "no thanks")
	})})
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		io.WriteString(c, crlf("POST / HTTP/1.1", "Host: a", fmt.Sprintf("Content-Length: %d", 1<<20)))
		c.Write(make([]byte, 1<<20))
	}()
	resp, err := readResponse(bufio.NewReader(c), "POST")
	if err != nil || !resp.Close {
		t.Fatalf("resp %v err %v; want Connection: close", resp, err)
	}
	waitEOF(t, c)
}

// TestLateBodyRead: a body still being read on another goroutine when
// the handler returns (an upstream writer outliving it) fails cleanly
// and costs the connection, without racing with the next request.
func TestLateBodyRead(t *testing.T) {
	readErr := make(chan error, 1)
	started := make(chan struct{})
	// The drain of the rest (when the reader was not inside Read at the
	// end) is bounded by ReadHeaderTimeout.
	s := &Server{ReadHeaderTimeout: 200 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		go func() {
			buf := make([]byte, 1)
			r.Body.Read(buf)
			close(started)
			_, err := io.Copy(io.Discard, r.Body)
			readErr <- err
		}()
		<-started
		io.WriteString(w, "early answer")
	})}
	addr := serveH1(t, s)
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, crlf("POST / HTTP/1.1", "Host: a", "Content-Length: 100")+"x")
	resp, err := readResponse(bufio.NewReader(c), "POST")
	if err != nil || bodyOf(resp) != "early answer" {
		t.Fatalf("resp %v err %v", resp, err)
	}
	if err := <-readErr; err == nil {
		t.Fatal("late body read succeeded")
	}
	waitEOF(t, c)
}

// TestConcurrentClients runs many clients with bodies at once (meant for
// -race).
func TestConcurrentClients(t *testing.T) {
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Len", fmt.Sprint(len(b)))
		w.Write(b)
	})}
	addr := serveH1(t, s)
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				body := strings.Repeat("z", (g*50+i)%3000)
				resp, err := cl.Post("http://"+addr+"/", "text/plain", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != body {
					errs <- fmt.Errorf("echo of %d bytes: got %d", len(body), len(b))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
