package upstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Cluster returns the h2c cluster "g" of a new Manager over addr.
func h2Cluster(t *testing.T, opts Options, addr string) *Cluster {
	m := newManager(t, opts, &ir.Cluster{Name: "g", Protocol: ir.UpstreamH2C, Endpoints: []ir.Endpoint{{Address: addr}}})
	return m.Cluster("g")
}

// countingListener counts accepted connections and reports closed ones.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
	closed   chan struct{}
}

type closeNotifyConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *closeNotifyConn) Close() error {
	c.once.Do(func() { c.closed <- struct{}{} })
	return c.Conn.Close()
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepted.Add(1)
	return &closeNotifyConn{Conn: c, closed: l.closed}, nil
}

// newH2CServer serves h over h2c with prior knowledge on net/http's
// server (x/net/http2's, bundled); maxStreams 0 keeps its default.
func newH2CServer(t testing.TB, maxStreams int, h http.Handler) (string, *countingListener) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln, closed: make(chan struct{}, 64)}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &p, HTTP2: &http.HTTP2Config{MaxConcurrentStreams: maxStreams}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(cl)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String(), cl
}

// TestH2LargeBidi sends and receives 8 MiB through the flow-control
// windows both ways, the server echoing as it reads, with trailers.
func TestH2LargeBidi(t *testing.T) {
	checkLeaks(t)
	addr, _ := newH2CServer(t, 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		w.WriteHeader(200)
		n, _ := io.Copy(w, r.Body)
		w.Header().Set("X-Sum", strings.Repeat("x", int(n%7)))
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
	}))
	c := h2Cluster(t, Options{}, addr)
	payload := make([]byte, 8<<20)
	rand.Read(payload)
	for _, known := range []bool{false, true} {
		var body io.Reader = io.MultiReader(bytes.NewReader(payload)) // unknown length: streamed
		req := newReq(context.Background(), "POST", "/echo", io.NopCloser(body))
		if known {
			req = newReq(context.Background(), "POST", "/echo", bytes.NewReader(payload))
			req.ContentLength = int64(len(payload))
		}
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("known=%v: %d bytes, err %v", known, len(got), err)
		}
		if v := resp.Trailer.Get("X-Sum"); v != strings.Repeat("x", len(payload)%7) {
			t.Errorf("trailer X-Sum = %q", v)
		}
		if v := resp.Trailer.Get("Grpc-Status"); v != "0" {
			t.Errorf("undeclared trailer Grpc-Status = %q", v)
		}
	}
}

// TestH2Concurrent runs many streams at once over a server allowing only
// two per connection: the client opens more connections and every
// response reaches its request.
func TestH2Concurrent(t *testing.T) {
	checkLeaks(t)
	addr, cl := newH2CServer(t, 2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	c := h2Cluster(t, Options{}, addr)
	get := func(i int) error {
		msg := strings.Repeat(string(rune('a'+i%26)), 100+i)
		req := newReq(context.Background(), "POST", "/", strings.NewReader(msg))
		req.ContentLength = int64(len(msg))
		resp, err := c.RoundTrip(req)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != msg {
			return errors.New("wrong echo: " + string(b))
		}
		return nil
	}
	if err := get(0); err != nil { // learns the server's SETTINGS
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() { errs <- get(i) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := cl.accepted.Load(); n < 2 {
		t.Errorf("%d connections for 40 concurrent streams at 2 per connection", n)
	}
}

// TestH2Cancel resets the stream when the request's context ends, and the
// server sees it.
func TestH2Cancel(t *testing.T) {
	checkLeaks(t)
	gone := make(chan struct{})
	addr, _ := newH2CServer(t, 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(gone)
	}))
	c := h2Cluster(t, Options{}, addr)
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := c.RoundTrip(newReq(ctx, "GET", "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v", err)
	}
	resp.Body.Close()
	<-gone // the server saw RST_STREAM
	// A deadline before the headers arrive.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	block := make(chan struct{})
	defer close(block)
	addr2, _ := newH2CServer(t, 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	if _, err := h2Cluster(t, Options{}, addr2).RoundTrip(newReq(ctx, "GET", "/", nil)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
}

// TestH2IdleClose closes a connection idle for the idle timeout.
func TestH2IdleClose(t *testing.T) {
	checkLeaks(t)
	addr, cl := newH2CServer(t, 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	c := h2Cluster(t, Options{IdleTimeout: 50 * time.Millisecond}, addr)
	resp, err := c.RoundTrip(newReq(context.Background(), "GET", "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case <-cl.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("idle connection not closed")
	}
}

// rawServer accepts connections and runs script on each with a framer,
// after the preface and the settings exchange (settings are what the
// server sends).
func rawServer(t *testing.T, settings []http2.Setting, script func(n int, fr *http2.Framer, dec *hpack.Decoder)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				br := bufio.NewReader(nc)
				pre := make([]byte, len(http2.ClientPreface))
				if _, err := io.ReadFull(br, pre); err != nil || string(pre) != http2.ClientPreface {
					return
				}
				fr := http2.NewFramer(nc, br)
				fr.WriteSettings(settings...)
				script(n, fr, hpack.NewDecoder(4096, nil))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// nextHeaders reads frames, acknowledging settings, until a HEADERS frame.
func nextHeaders(fr *http2.Framer) (*http2.HeadersFrame, error) {
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			return f, nil
		}
	}
}

func respond(fr *http2.Framer, id uint32, status string, body string) {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	enc.WriteField(hpack.HeaderField{Name: ":status", Value: status})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: body == ""})
	if body != "" {
		fr.WriteData(id, true, []byte(body))
	}
}

// TestH2GoAwayRetry: the server takes one stream and sends GOAWAY past it;
// the other stream is sent again on a new connection.
func TestH2GoAwayRetry(t *testing.T) {
	checkLeaks(t)
	addr := rawServer(t, nil, func(n int, fr *http2.Framer, _ *hpack.Decoder) {
		if n > 0 { // later connections answer everything
			for {
				h, err := nextHeaders(fr)
				if err != nil {
					return
				}
				respond(fr, h.StreamID, "200", "second")
			}
		}
		a, err := nextHeaders(fr)
		if err != nil {
			return
		}
		if _, err := nextHeaders(fr); err != nil {
			return
		}
		fr.WriteGoAway(a.StreamID, http2.ErrCodeNo, nil)
		respond(fr, a.StreamID, "200", "first")
		for { // until the client closes the connection, its streams done
			if _, err := fr.ReadFrame(); err != nil {
				return
			}
		}
	})
	c := h2Cluster(t, Options{}, addr)
	// Two requests in flight at once, on the one connection.
	var wg sync.WaitGroup
	got := make(chan string, 2)
	for range 2 {
		wg.Go(func() {
			resp, err := c.RoundTrip(newReq(context.Background(), "GET", "/", nil))
			if err != nil {
				got <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got <- string(b)
		})
	}
	wg.Wait()
	close(got)
	seen := map[string]int{}
	for s := range got {
		seen[s]++
	}
	if seen["first"] != 1 || seen["second"] != 1 {
		t.Fatalf("responses %v, want one first and one second", seen)
	}
}

// TestH2RawFlowControl: a server with a 1000-byte stream window gets no
// more than it granted, and a PING is answered in between.
func TestH2RawFlowControl(t *testing.T) {
	checkLeaks(t)
	const size = 5000
	errc := make(chan error, 1)
	addr := rawServer(t, []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 1000}}, func(n int, fr *http2.Framer, _ *hpack.Decoder) {
		h, err := nextHeaders(fr) // the first request settles the settings
		if err != nil {
			return
		}
		respond(fr, h.StreamID, "204", "")
		if h, err = nextHeaders(fr); err != nil {
			return
		}
		fr.WritePing(false, [8]byte{1, 2, 3})
		granted, got, pinged := 1000, 0, false
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				errc <- err
				return
			}
			switch f := f.(type) {
			case *http2.PingFrame:
				pinged = f.IsAck() && f.Data == [8]byte{1, 2, 3}
			case *http2.DataFrame:
				got += len(f.Data())
				if got > granted {
					errc <- errors.New("client overran the stream window")
					return
				}
				if got == granted && !f.StreamEnded() {
					fr.WriteWindowUpdate(h.StreamID, 1000)
					granted += 1000
				}
				if f.StreamEnded() {
					if got != size || !pinged {
						errc <- errors.New("short body or no PING ack")
						return
					}
					respond(fr, h.StreamID, "200", "ok")
					errc <- nil
					for {
						if _, err := fr.ReadFrame(); err != nil {
							return
						}
					}
				}
			}
		}
	})
	c := h2Cluster(t, Options{}, addr)
	resp, err := c.RoundTrip(newReq(context.Background(), "GET", "/", nil))
	if err != nil || resp.StatusCode != 204 {
		t.Fatal(resp, err)
	}
	resp.Body.Close()
	req := newReq(context.Background(), "POST", "/", bytes.NewReader(make([]byte, size)))
	req.ContentLength = size
	resp, err = c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
}

// TestH2RawReset: RST_STREAM REFUSED_STREAM is retried, any other code
// fails the request.
func TestH2RawReset(t *testing.T) {
	checkLeaks(t)
	var streams atomic.Int64
	addr := rawServer(t, nil, func(n int, fr *http2.Framer, dec *hpack.Decoder) {
		for {
			h, err := nextHeaders(fr)
			if err != nil {
				return
			}
			fields, _ := dec.DecodeFull(h.HeaderBlockFragment())
			path := ""
			for _, f := range fields {
				if f.Name == ":path" {
					path = f.Value
				}
			}
			switch k := streams.Add(1); {
			case path == "/refuse" && k == 1:
				fr.WriteRSTStream(h.StreamID, http2.ErrCodeRefusedStream)
			case path == "/refuse":
				respond(fr, h.StreamID, "200", "again")
			default:
				fr.WriteRSTStream(h.StreamID, http2.ErrCodeInternal)
			}
		}
	})
	c := h2Cluster(t, Options{}, addr)
	resp, err := c.RoundTrip(newReq(context.Background(), "GET", "/refuse", nil))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "again" || streams.Load() != 2 {
		t.Fatalf("body %q after %d streams", b, streams.Load())
	}
	_, err = c.RoundTrip(newReq(context.Background(), "GET", "/fail", nil))
	var se http2.StreamError
	if !errors.As(err, &se) || se.Code != http2.ErrCodeInternal || streams.Load() != 3 {
		t.Fatalf("err = %v after %d streams, want a stream error INTERNAL_ERROR, not retried", err, streams.Load())
	}
}

// TestH2RawMaxStreams: with SETTINGS_MAX_CONCURRENT_STREAMS 1, a second
// request in flight opens a second connection.
func TestH2RawMaxStreams(t *testing.T) {
	checkLeaks(t)
	second := make(chan struct{})
	errc := make(chan error, 2)
	addr := rawServer(t, []http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: 1}}, func(n int, fr *http2.Framer, _ *hpack.Decoder) {
		if n == 1 {
			h, err := nextHeaders(fr)
			if err != nil {
				return
			}
			close(second)
			respond(fr, h.StreamID, "200", "b")
		} else {
			h, err := nextHeaders(fr) // warm-up
			if err != nil {
				return
			}
			respond(fr, h.StreamID, "204", "")
			if h, err = nextHeaders(fr); err != nil {
				return
			}
			// Hold this stream until the other connection has its request;
			// a second HEADERS here would break the limit.
			go func() {
				<-second
				respond(fr, h.StreamID, "200", "a")
			}()
			if _, err := nextHeaders(fr); err == nil {
				errc <- errors.New("two streams on one connection")
			}
		}
		for {
			if _, err := fr.ReadFrame(); err != nil {
				return
			}
		}
	})
	c := h2Cluster(t, Options{}, addr)
	resp, err := c.RoundTrip(newReq(context.Background(), "GET", "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	bodies := ""
	for range 2 {
		wg.Go(func() {
			resp, err := c.RoundTrip(newReq(context.Background(), "GET", "/", nil))
			if err != nil {
				errc <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			bodies += string(b)
			mu.Unlock()
		})
	}
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	if bodies != "ab" && bodies != "ba" {
		t.Fatalf("bodies %q", bodies)
	}
}

// TestH2ConnLost: a server that closes the connection on a request without
// answering gets an idempotent bodiless request again, on a new
// connection, and a POST once only.
func TestH2ConnLost(t *testing.T) {
	checkLeaks(t)
	var drops, posts atomic.Int64
	addr := rawServer(t, nil, func(n int, fr *http2.Framer, dec *hpack.Decoder) {
		for {
			h, err := nextHeaders(fr)
			if err != nil {
				return
			}
			fields, _ := dec.DecodeFull(h.HeaderBlockFragment())
			path := ""
			for _, f := range fields {
				if f.Name == ":path" {
					path = f.Value
				}
			}
			switch {
			case path == "/post":
				posts.Add(1)
				return // closes the connection
			case path == "/drop" && drops.Add(1) == 1:
				return
			}
			respond(fr, h.StreamID, "200", "ok")
		}
	})
	c := h2Cluster(t, Options{}, addr)
	resp, err := c.RoundTrip(newReq(context.Background(), "GET", "/drop", nil))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" || drops.Load() != 2 {
		t.Fatalf("body %q after %d attempts", b, drops.Load())
	}
	req := newReq(context.Background(), "POST", "/post", strings.NewReader("x"))
	if _, err := c.RoundTrip(req); err == nil || posts.Load() != 1 {
		t.Fatalf("POST: err %v after %d attempts, want an error after 1", err, posts.Load())
	}
}
