// Package h1 is the proxy's downstream HTTP/1.1 server: it sits between a
// listener's accepted connections (plain TCP or TLS) and the proxy's
// http.Handler, in place of net/http's server, which costs a background
// reader goroutine, several allocations and a deadline change per request.
//
// One goroutine serves a connection, reading requests in order (pipelined
// requests included) from one buffer and writing responses through one
// bufio.Writer. The parser is strict, because a proxy's parser is a request
// smuggling surface: see parse.go for what is refused.
//
// Handler contract, stricter than net/http's: the *http.Request, its
// Header map and URL, and the http.ResponseWriter and its Header map are
// reused for the next request on the same connection once ServeHTTP
// returns. The handler, and whatever it hands them to, must not use them
// after it returns. The Body and Trailer are not reused: a body read or
// closed late (by an upstream writer) fails with
// http.ErrBodyReadAfterClose. Header values are substrings of one string
// per request, safe to keep; keeping one keeps the whole header block.
//
// r.Context() is one context per connection: it ends when the connection
// ends, when a write to the client fails, or when the client is seen to
// go away. It does not end when ServeHTTP returns, so whatever a handler
// registers on it (context.AfterFunc, WithCancel children) it must
// release itself. Seeing the client go away costs a read, so it is only
// watched for requests that have run for DisconnectCheck with their body
// read to its end: a quick request never pays for it, and a long poll or
// event stream notices a disconnect within about DisconnectCheck plus
// half of it. A request still reading its body notices a disconnect as a
// body read error instead.
package h1

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server serves HTTP/1.x on connections handed to ServeConn. Set its
// fields before the first ServeConn and do not change them after.
type Server struct {
	// Handler answers requests; required.
	Handler http.Handler
	// MaxHeaderBytes bounds the request line and header fields together
	// (431 beyond), and the trailer section of a chunked request body. 0:
	// 64 KiB.
	MaxHeaderBytes int
	// MaxRequestLineBytes bounds the request line (414 beyond). 0: 8 KiB.
	MaxRequestLineBytes int
	// ReadHeaderTimeout bounds reading a request's header once its first
	// byte arrived, and a TLS handshake. 0: 10s; negative: none.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a connection that waits this long for a request;
	// it is enforced with a granularity of a quarter of itself. 0: 120s;
	// negative: none.
	IdleTimeout time.Duration
	// DisconnectCheck is how long a request runs before the server starts
	// watching for the client to go away (see the package doc). 0: 1s.
	DisconnectCheck time.Duration
	// ConnState, if set, is called as net/http calls it: StateNew,
	// StateActive, StateIdle, then StateHijacked or StateClosed. A
	// connection handed to H2 or H2C stays active until it is closed.
	ConnState func(net.Conn, http.ConnState)
	// ErrorLog receives handler panics (Error) and client protocol errors
	// (Debug); nil: nothing is logged.
	ErrorLog *slog.Logger
	// H2C serves a plain connection that starts with the HTTP/2 preface
	// (prior knowledge). It is called on ServeConn's goroutine with a
	// net.Conn whose first reads return the bytes already read, preface
	// included, and must serve it until it ends; ServeConn then closes it.
	// HTTP2.ServeConn fits (see NewHTTP2). nil: such connections are
	// closed.
	H2C func(c net.Conn)
	// H2 serves a TLS connection (a *tls.Conn, handshake done) that
	// negotiated "h2" with ALPN, as H2C does. nil: such connections are
	// closed.
	H2 func(c net.Conn)

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	scanning  bool          // the slow-request scanner runs
	drained   chan struct{} // closed when Shutdown sees the last conn go
	shutting  atomic.Bool
}

const (
	defaultMaxHeader       = 64 << 10
	defaultMaxLine         = 8 << 10
	defaultHeaderTimeout   = 10 * time.Second
	defaultIdleTimeout     = 120 * time.Second
	defaultDisconnectCheck = time.Second
	// maxDrain is how much of an unread request body is discarded after
	// the handler to keep the connection; more and it is closed.
	maxDrain = 256 << 10
	// lingerTime bounds the wait for the client's FIN after a response
	// that closes the connection, so that the response is not lost to a
	// reset.
	lingerTime = 500 * time.Millisecond
)

// ErrServerClosed is returned by Shutdown when called twice.
var ErrServerClosed = errors.New("h1: server closed")

// aLongTimeAgo, as a deadline, makes a blocked read return.
var aLongTimeAgo = time.Unix(1, 0)

// settings are the Server's fields with defaults applied.
type settings struct {
	maxHeader, maxLine int
	headerTimeout      time.Duration
	idleTimeout        time.Duration
	check              time.Duration
}

func (s *Server) settings() settings {
	st := settings{
		maxHeader:     s.MaxHeaderBytes,
		maxLine:       s.MaxRequestLineBytes,
		headerTimeout: s.ReadHeaderTimeout,
		idleTimeout:   s.IdleTimeout,
		check:         s.DisconnectCheck,
	}
	if st.maxHeader <= 0 {
		st.maxHeader = defaultMaxHeader
	}
	if st.maxLine <= 0 {
		st.maxLine = defaultMaxLine
	}
	if st.headerTimeout == 0 {
		st.headerTimeout = defaultHeaderTimeout
	}
	if st.idleTimeout == 0 {
		st.idleTimeout = defaultIdleTimeout
	}
	if st.check <= 0 {
		st.check = defaultDisconnectCheck
	}
	return st
}

// Serve accepts connections on ln and serves each with ServeConn in a
// goroutine of its own. Accept errors from exhausted resources (EMFILE
// and the like) are retried with a growing delay; others end Serve. It
// returns ErrServerClosed after Shutdown or Close, which close ln.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return ErrServerClosed
			}
			if !retryAccept(err) {
				return err
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.logDebug("h1: accept", "err", err, "retry", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		go s.ServeConn(c)
	}
}

// retryAccept tells whether an accept error is about resources that may
// come back.
func retryAccept(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// closeListeners closes what Serve accepts from; s.mu is held.
func (s *Server) closeListeners() {
	for ln := range s.listeners {
		_ = ln.Close()
	}
}

// ServeConn serves c until it closes, the client or the handler asks to
// close, a protocol error, or Shutdown. It closes c unless a handler
// hijacked it. The caller's accept loop runs it in a goroutine.
func (s *Server) ServeConn(c net.Conn) {
	cn := newConn(s, c)
	s.state(c, http.StateNew)
	if !s.track(cn, true) {
		_ = c.Close()
		s.state(c, http.StateClosed)
		return
	}
	cn.serve()
}

func (s *Server) state(c net.Conn, st http.ConnState) {
	if s.ConnState != nil {
		s.ConnState(c, st)
	}
}

func (s *Server) logDebug(msg string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Debug(msg, args...)
	}
}

// track adds or removes a connection; adding fails after Shutdown.
func (s *Server) track(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.shutting.Load() {
			return false
		}
		if s.conns == nil {
			s.conns = map[*conn]struct{}{}
		}
		s.conns[c] = struct{}{}
		if !s.scanning {
			s.scanning = true
			go s.scan(c.st.check)
		}
		return true
	}
	delete(s.conns, c)
	if len(s.conns) == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
	return true
}

// scan starts the disconnect watch of requests that have run for longer
// than check. It ends when there are no connections left.
func (s *Server) scan(check time.Duration) {
	period := check / 2
	t := time.NewTicker(period)
	defer t.Stop()
	for range t.C {
		now := time.Now().UnixNano()
		s.mu.Lock()
		if len(s.conns) == 0 {
			s.scanning = false
			s.mu.Unlock()
			return
		}
		for c := range s.conns {
			c.maybeWatch(now, int64(check))
		}
		s.mu.Unlock()
	}
}

// Shutdown closes the listeners of Serve, refuses new connections,
// closes idle ones at once and the
// others when their current response is done, and waits for them all
// until ctx ends; then it closes what is left and returns ctx's error.
// Hijacked connections are not tracked; connections handed to H2 or H2C
// are waited for and then closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.shutting.Swap(true) {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.closeListeners()
	for c := range s.conns {
		c.closeIfIdle()
	}
	if len(s.conns) == 0 {
		s.mu.Unlock()
		return nil
	}
	done := make(chan struct{})
	s.drained = done
	s.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		_ = c.nc.Close()
	}
	s.mu.Unlock()
	return ctx.Err()
}

// Close closes the listeners of Serve and every connection at once.
func (s *Server) Close() error {
	s.shutting.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeListeners()
	for c := range s.conns {
		_ = c.nc.Close()
	}
	return nil
}

// dateCache is the Date header value of one second.
type dateCache struct {
	sec int64
	b   []byte // "Date: ...\r\n"
}

var date atomic.Pointer[dateCache]

// appendDate appends the Date header line for now, formatting it at most
// once per second process-wide.
func appendDate(dst []byte, now time.Time) []byte {
	sec := now.Unix()
	d := date.Load()
	if d == nil || d.sec != sec {
		b := make([]byte, 0, 40)
		b = append(b, "Date: "...)
		b = now.UTC().AppendFormat(b, http.TimeFormat)
		b = append(b, "\r\n"...)
		d = &dateCache{sec: sec, b: b}
		date.Store(d)
	}
	return append(dst, d.b...)
}
