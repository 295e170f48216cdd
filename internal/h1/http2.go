package h1

//lint:file-ignore SA1019 x/net/http2's Server.ServeConn is the one public way to serve HTTP/2 on a net.Conn that is not a *tls.Conn yet carries TLS state (the guard over a TLS connection); net/http serves h2 only on a *tls.Conn it accepted itself.

import (
	"context"
	"crypto/tls"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// HTTP2 serves, with golang.org/x/net/http2 configured from a net/http
// server, the connections that Server hands to its H2 (TLS, ALPN "h2")
// and H2C (prior knowledge) fields:
//
//	h2 := h1.NewHTTP2(&http.Server{Handler: handler})
//	srv := &h1.Server{Handler: handler, H2: h2.ServeConn, H2C: h2.ServeConn}
//
// and at shutdown both srv.Shutdown and h2.Shutdown (which sends GOAWAY).
//
// Every connection is read through a guard (h2guard.go) that makes the
// server hold to RFC 9113 where it does not on its own: malformed
// requests are reset with PROTOCOL_ERROR before any handler sees them,
// and SETTINGS frames may repeat a setting.
type HTTP2 struct {
	srv *http.Server
	h2  *http2.Server

	maxFrame  int    // SETTINGS_MAX_FRAME_SIZE the server announces
	tableSize uint32 // SETTINGS_HEADER_TABLE_SIZE likewise

	mu       sync.Mutex
	live     map[*guard]struct{}
	drained  chan struct{} // closed when shutting and live is empty
	shutting bool
}

// NewHTTP2 serves connections with srv's Handler, ErrorLog, timeouts,
// MaxHeaderBytes and HTTP2 settings. srv is never started: its TLSConfig
// is not used (connections arrive with their handshake done) and its
// Protocols are ignored. Its ConnState, if set, is called with the
// connection ServeConn was given: StateActive and StateIdle as streams
// come and go, and StateClosed when it ends.
func NewHTTP2(srv *http.Server) *HTTP2 {
	h := &HTTP2{
		srv:       srv,
		h2:        &http2.Server{},
		maxFrame:  1 << 20,
		tableSize: 4096,
		live:      map[*guard]struct{}{},
	}
	// What x/net/http2 announces (its config.go): srv.HTTP2's values
	// when in range, else its defaults.
	if c := srv.HTTP2; c != nil {
		if c.MaxReadFrameSize >= 1<<14 && c.MaxReadFrameSize <= 1<<24-1 {
			h.maxFrame = c.MaxReadFrameSize
		}
		if c.MaxDecoderHeaderTableSize > 0 && c.MaxDecoderHeaderTableSize <= math.MaxUint32 {
			h.tableSize = uint32(c.MaxDecoderHeaderTableSize)
		}
	}
	if user := srv.ConnState; user != nil {
		srv.ConnState = func(c net.Conn, st http.ConnState) {
			switch f := c.(type) {
			case tlsFlushConn:
				c = f.g.Conn
			case *flushConn:
				c = f.g.Conn
			case *guard:
				c = f.Conn
			}
			user(c, st)
		}
	}
	// Registers the graceful shutdown (GOAWAY) on srv.Shutdown; its
	// only error is about srv.TLSConfig's cipher suites, unused here.
	_ = http2.ConfigureServer(srv, h.h2)
	return h
}

// ServeConn serves c, whose first bytes are the client preface, with
// HTTP/2 and returns when it is closed.
func (h *HTTP2) ServeConn(c net.Conn) {
	g := newGuard(c, h.maxFrame, h.tableSize)
	h.mu.Lock()
	if h.shutting {
		h.mu.Unlock()
		_ = c.Close()
		return
	}
	h.live[g] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.live, g)
		if h.shutting && len(h.live) == 0 {
			close(h.drained)
		}
		h.mu.Unlock()
		if h.srv.ConnState != nil {
			h.srv.ConnState(g, http.StateClosed)
		}
	}()
	h.h2.ServeConn(newFlushConn(g), &http2.ServeConnOpts{BaseConfig: h.srv})
}

// Shutdown sends GOAWAY on every connection and waits for them to end
// until ctx ends, then closes those left.
func (h *HTTP2) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	if h.shutting {
		h.mu.Unlock()
		return ErrServerClosed
	}
	h.shutting = true
	h.drained = make(chan struct{})
	if len(h.live) == 0 {
		close(h.drained)
	}
	h.mu.Unlock()
	_ = h.srv.Shutdown(ctx) // runs the GOAWAY hook; srv has no listener
	select {
	case <-h.drained:
		return nil
	case <-ctx.Done():
	}
	h.mu.Lock()
	for g := range h.live {
		_ = g.Conn.Close()
	}
	h.mu.Unlock()
	<-h.drained
	return ctx.Err()
}

// flushConn is the connection x/net/http2 writes to. The server flushes
// whenever its write queue runs dry, and a handler's response reaches that
// queue in two steps (HEADERS, then DATA, each awaited), so a small reply
// would cost two flushes: two TLS records, two write syscalls. flushConn's
// Write instead copies the bytes and returns, and one writer goroutine
// sends what has gathered meanwhile in one write: HEADERS and DATA of a
// stream, and of other streams, coalesce under load. An idle connection
// costs nothing (the writer runs only while bytes are pending); bytes
// pending are bounded by flushMax, beyond which Write waits.
type flushConn struct {
	net.Conn // the guard (tlsGuard or *guard)
	g        *guard

	mu   sync.Mutex
	cond sync.Cond // signalled when the writer takes or finishes a batch
	pend *[]byte   // bytes not yet handed to the writer; nil when none
	busy bool      // a writer goroutine runs
	err  error     // the first write error: every later Write returns it
}

// tlsFlushConn is a flushConn over TLS: x/net/http2 reads the TLS state
// (for Request.TLS and RFC 9113 §9.2) through ConnectionState.
type tlsFlushConn struct{ *flushConn }

func (t tlsFlushConn) ConnectionState() tls.ConnectionState {
	return t.g.Conn.(connectionStater).ConnectionState()
}

const (
	flushMax   = 256 << 10       // pending bytes beyond which Write waits
	flushKeep  = 64 << 10        // larger buffers are not pooled
	closeDrain = 2 * time.Second // how long Close lets pending bytes go out
)

var flushPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func newFlushConn(g *guard) net.Conn {
	f := &flushConn{Conn: g.wrap(), g: g}
	f.cond.L = &f.mu
	if _, ok := g.Conn.(connectionStater); ok {
		return tlsFlushConn{f}
	}
	return f
}

func (f *flushConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	for f.err == nil && f.pend != nil && len(*f.pend) >= flushMax {
		f.cond.Wait()
	}
	if err := f.err; err != nil {
		f.mu.Unlock()
		return 0, err
	}
	if f.pend == nil {
		f.pend = flushPool.Get().(*[]byte)
	}
	*f.pend = append(*f.pend, p...)
	if !f.busy {
		f.busy = true
		go f.drain()
	}
	f.mu.Unlock()
	return len(p), nil
}

// drain writes the pending bytes, batch by batch, until there are none.
func (f *flushConn) drain() {
	f.mu.Lock()
	for f.pend != nil && f.err == nil {
		b := f.pend
		f.pend = nil
		f.cond.Broadcast()
		f.mu.Unlock()
		_, err := f.Conn.Write(*b)
		if cap(*b) <= flushKeep {
			*b = (*b)[:0]
			flushPool.Put(b)
		}
		f.mu.Lock()
		if err != nil {
			f.err = err
		}
	}
	if f.pend != nil { // after an error
		f.pend = nil
	}
	f.busy = false
	f.cond.Broadcast()
	f.mu.Unlock()
}

// Close lets the pending bytes (a GOAWAY, say) go out first, for at most
// closeDrain, then closes the connection.
func (f *flushConn) Close() error {
	f.mu.Lock()
	if f.busy {
		t := time.AfterFunc(closeDrain, func() { _ = f.Conn.Close() })
		for f.busy {
			f.cond.Wait()
		}
		t.Stop()
	}
	f.mu.Unlock()
	return f.Conn.Close()
}
