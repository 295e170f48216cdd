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
	"net/url"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Connection states, for Shutdown.
const (
	stateIdle int32 = iota
	stateActive
	stateClosing
)

// Bits of conn.watch: the handler runs, the request body has been read to
// its end (or there is none), the disconnect watch is on.
const (
	watchRunning  uint32 = 1
	watchBodyDone uint32 = 2
	watchOn       uint32 = 4
)

const bufSize = 4 << 10

var (
	readBufPool  = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}
	writeBufPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufSize) }}
)

// errClientGone is the cause of a connection context cancelled because
// the client went away.
var errClientGone = errors.New("h1: client disconnected")

// errConnClosed is the cause of a connection context at the end.
var errConnClosed = errors.New("h1: connection closed")

const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// conn is one client connection and everything reused across its
// requests.
type conn struct {
	s   *Server
	st  settings
	nc  net.Conn
	buf []byte // read buffer: buf[r:w] is unread
	r   int
	w   int
	rdl time.Time // read deadline set on nc; zero: none
	bw  *bufio.Writer

	ctx      context.Context
	cancel   context.CancelCauseFunc
	remote   string
	tlsState *tls.ConnectionState

	tmpl http.Request // carries ctx; copied over req to reset it
	req  http.Request
	url  url.URL
	hd   head
	resp response
	body *body // the current request's body; nil without one

	state   atomic.Int32
	watch   atomic.Uint32
	started atomic.Int64 // UnixNano of the current request's start
	// The disconnect watch: watchDone is closed when the watcher ends;
	// watchStop, under watchMu, tells it not to start reading.
	watchMu   sync.Mutex
	watchStop bool
	watchDone chan struct{}
	readErr   error // set by the watcher when the client went away

	// 100-continue: contPending until it is sent or made moot by the
	// response; contMu orders it with the response header.
	contMu      sync.Mutex
	contPending atomic.Bool
	contSent    bool
	contWanted  bool

	werr     error // first write error
	hijacked bool
	draining bool // body reads keep the read deadline
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, st: s.settings(), nc: nc}
	c.state.Store(stateIdle)
	return c
}

// connWriter is what bw flushes to: a failed write ends the connection's
// context, which is how a long request learns that its client is gone.
type connWriter struct{ c *conn }

func (cw connWriter) Write(p []byte) (int, error) {
	n, err := cw.c.nc.Write(p)
	if err != nil && cw.c.werr == nil {
		cw.c.werr = err
		cw.c.cancel(fmt.Errorf("%w: %w", errClientGone, err))
	}
	return n, err
}

func (c *conn) serve() {
	defer c.end()
	ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, c.nc.LocalAddr())
	c.ctx, c.cancel = context.WithCancelCause(ctx)
	c.tmpl = *(&http.Request{}).WithContext(c.ctx)
	c.remote = c.nc.RemoteAddr().String()
	c.hd = head{r: &c.req, u: &c.url, h: http.Header{}}

	if tc, ok := c.nc.(*tls.Conn); ok {
		if c.st.headerTimeout > 0 {
			c.setReadDeadline(time.Now().Add(c.st.headerTimeout))
			_ = tc.SetWriteDeadline(time.Now().Add(c.st.headerTimeout))
		}
		if err := tc.HandshakeContext(c.ctx); err != nil {
			c.s.logDebug("h1: TLS handshake", "remote", c.remote, "err", err)
			return
		}
		_ = tc.SetWriteDeadline(time.Time{})
		cs := tc.ConnectionState()
		c.tlsState = &cs
		if cs.NegotiatedProtocol == "h2" {
			c.handOff(c.s.H2, tc)
			return
		}
	}
	c.tmpl.TLS = c.tlsState

	bp := readBufPool.Get().(*[]byte)
	c.buf = *bp
	defer func() {
		if len(c.buf) == bufSize && !c.hijacked {
			*bp = c.buf
			readBufPool.Put(bp)
		}
	}()
	c.bw = writeBufPool.Get().(*bufio.Writer)
	c.bw.Reset(connWriter{c})

	first := true
	for {
		if !c.waitRequest() {
			return
		}
		c.s.state(c.nc, http.StateActive)
		block, err := c.readHead()
		if err == nil && first {
			first = false
			if block == h2Preface[:18] {
				c.serveH2C()
				return
			}
		}
		if err != nil {
			if c.fail(err) {
				c.lingerClose()
			}
			return
		}
		if !c.serveRequest(block) {
			if !c.hijacked {
				c.lingerClose()
			}
			return
		}
		c.s.state(c.nc, http.StateIdle)
	}
}

// end releases the connection unless it was hijacked.
func (c *conn) end() {
	if c.cancel != nil {
		c.cancel(errConnClosed)
	}
	if c.hijacked {
		return
	}
	_ = c.nc.Close()
	if c.bw != nil {
		c.bw.Reset(nil)
		writeBufPool.Put(c.bw)
		c.bw = nil
	}
	c.s.track(c, false)
	c.s.state(c.nc, http.StateClosed)
}

// waitRequest waits for the first byte of the next request, within the
// idle timeout, and marks the connection active. It fails when the
// connection ends or Shutdown closed it while idle.
func (c *conn) waitRequest() bool {
	c.state.Store(stateIdle)
	if c.r == c.w {
		c.r, c.w = 0, 0
		c.armIdle(time.Now())
		// After the deadline is set: Shutdown's wake-up must come after it.
		if c.s.shutting.Load() {
			return false
		}
		if err := c.fill(); err != nil {
			return false
		}
	}
	return c.state.CompareAndSwap(stateIdle, stateActive)
}

// closeIfIdle closes the connection if it waits for a request; one that
// is serving sees Shutdown when its response is done.
func (c *conn) closeIfIdle() {
	if c.state.CompareAndSwap(stateIdle, stateClosing) {
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
	}
}

func (c *conn) setReadDeadline(t time.Time) {
	c.rdl = t
	_ = c.nc.SetReadDeadline(t)
}

// armIdle sets the idle deadline unless the one set is close enough: a
// busy connection does not pay a deadline change per request.
func (c *conn) armIdle(now time.Time) {
	d := c.st.idleTimeout
	if d < 0 {
		if !c.rdl.IsZero() {
			c.setReadDeadline(time.Time{})
		}
		return
	}
	want := now.Add(d)
	if c.rdl.IsZero() || c.rdl.Before(want.Add(-d/4)) || c.rdl.After(want) {
		c.setReadDeadline(want)
	}
}

// armHeader bounds the reading of the rest of a header. An expired
// deadline (left by the disconnect watch) is replaced in any case.
func (c *conn) armHeader() {
	now := time.Now()
	expired := !c.rdl.IsZero() && !c.rdl.After(now)
	if c.st.headerTimeout < 0 {
		if expired {
			c.setReadDeadline(time.Time{})
		}
		return
	}
	want := now.Add(c.st.headerTimeout)
	if c.rdl.IsZero() || c.rdl.After(want) || expired {
		c.setReadDeadline(want)
	}
}

// clearDeadline lifts the read deadline before a read that has no bound
// (a request body, the disconnect watch).
func (c *conn) clearDeadline() {
	if !c.rdl.IsZero() {
		c.setReadDeadline(time.Time{})
	}
}

// fill reads once into the free end of buf, which must have room.
func (c *conn) fill() error {
	n, err := c.nc.Read(c.buf[c.w:])
	c.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// makeRoom frees or adds space at the end of buf, up to limit bytes of
// buffered data.
func (c *conn) makeRoom(limit int) bool {
	if c.w < len(c.buf) {
		return true
	}
	if c.r > 0 {
		n := copy(c.buf, c.buf[c.r:c.w])
		c.r, c.w = 0, n
		return true
	}
	if len(c.buf) >= limit {
		return false
	}
	nb := make([]byte, min(2*len(c.buf), limit))
	copy(nb, c.buf[:c.w])
	c.buf = nb
	return true
}

// readHead returns the next request's header block, from the request
// line to the empty line. Empty lines before the request line are
// skipped (RFC 9112 2.2).
func (c *conn) readHead() (string, error) {
	limit := c.st.maxHeader + c.st.maxLine // buffer bound; checked below
	armed := false
	searched := 0 // bytes after c.r known not to hold the end
	for {
		for searched == 0 && c.w-c.r >= 2 && c.buf[c.r] == '\r' && c.buf[c.r+1] == '\n' {
			c.r += 2
		}
		if end := headEnd(c.buf[c.r+searched : c.w]); end >= 0 {
			end += c.r + searched
			if end-c.r > c.st.maxHeader && bytes.IndexByte(c.buf[c.r:end], '\n') <= c.st.maxLine {
				return "", &reqError{http.StatusRequestHeaderFieldsTooLarge, "request header too large"}
			}
			s := string(c.buf[c.r:end])
			c.r = end
			return s, nil
		}
		n := c.w - c.r
		if bytes.IndexByte(c.buf[c.r:c.w], '\n') < 0 {
			if n > c.st.maxLine {
				return "", &reqError{http.StatusRequestURITooLong, "request line too long"}
			}
		} else if n > c.st.maxHeader {
			return "", &reqError{http.StatusRequestHeaderFieldsTooLarge, "request header too large"}
		}
		searched = max(0, n-3)
		if !c.makeRoom(limit) {
			return "", &reqError{http.StatusRequestHeaderFieldsTooLarge, "request header too large"}
		}
		if !armed {
			armed = true
			c.armHeader()
		}
		if err := c.fill(); err != nil {
			return "", err
		}
	}
}

// headEnd returns the index just past the end of a header block in b,
// -1 if it is incomplete. A block ending in bare LFs is returned too, for
// parse to refuse.
func headEnd(b []byte) int {
	i := bytes.Index(b, []byte("\n\r\n"))
	if i >= 0 {
		i += 3
	}
	if j := bytes.Index(b, []byte("\n\n")); j >= 0 && (i < 0 || j+2 < i) {
		i = j + 2
	}
	return i
}

// fail answers a request that could not be read, if it can be answered,
// and tells whether it did.
func (c *conn) fail(err error) bool {
	var re *reqError
	if !errors.As(err, &re) {
		return false // EOF, timeout, reset: nothing to answer
	}
	c.s.logDebug("h1: bad request", "remote", c.remote, "err", err)
	c.replyError(re)
	return true
}

// replyError writes a short plain-text answer that closes the connection.
func (c *conn) replyError(re *reqError) {
	text := http.StatusText(re.code)
	body := strconv.Itoa(re.code) + " " + text + ": " + re.msg + "\n"
	b := c.bw.AvailableBuffer()
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(re.code), 10)
	b = append(b, ' ')
	b = append(b, text...)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n"...)
	b = appendDate(b, time.Now())
	b = append(b, "\r\n"...)
	b = append(b, body...)
	_, _ = c.bw.Write(b)
	_ = c.bw.Flush()
}

// lingerClose half-closes and waits briefly for the client to close, so
// that unread request bytes do not turn the close into a reset that
// destroys the response in flight.
func (c *conn) lingerClose() {
	if c.bw != nil {
		_ = c.bw.Flush()
	}
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	var scratch [512]byte
	for range 128 { // at most 64 KiB
		if _, err := c.nc.Read(scratch[:]); err != nil {
			return
		}
	}
}

// serveH2C hands a connection that started with the HTTP/2 preface to
// H2C, the bytes read so far replayed.
func (c *conn) serveH2C() {
	for c.w-c.r < 6 {
		if !c.makeRoom(len(c.buf)) {
			return
		}
		if err := c.fill(); err != nil {
			return
		}
	}
	if string(c.buf[c.r:c.r+6]) != h2Preface[18:] {
		// RFC 9113 §3.4: a connection error, closed, never answered.
		c.s.logDebug("h1: malformed HTTP/2 preface", "remote", c.remote)
		return
	}
	pre := make([]byte, 0, 18+c.w-c.r)
	pre = append(pre, h2Preface[:18]...)
	pre = append(pre, c.buf[c.r:c.w]...)
	c.r = c.w
	c.handOff(c.s.H2C, &prefixConn{Conn: c.nc, pre: pre})
}

// handOff serves the connection with an HTTP/2 server, on this goroutine.
func (c *conn) handOff(h2 func(net.Conn), nc net.Conn) {
	if h2 == nil {
		return
	}
	c.state.Store(stateActive)
	c.clearDeadline()
	c.s.state(c.nc, http.StateActive)
	h2(nc)
}

// prefixConn is a connection whose first reads return pre.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// serveRequest parses the header block and runs the handler. It tells
// whether the connection can serve another request.
func (c *conn) serveRequest(block string) (keep bool) {
	now := time.Now()
	c.req = c.tmpl
	r := &c.req
	r.URL = &c.url
	r.Header = c.hd.h
	r.RemoteAddr = c.remote
	defer c.hd.reset()
	f, err := c.hd.parse(block, c.st.maxLine)
	if err != nil {
		c.fail(err)
		return false
	}
	w := &c.resp
	c.body = nil
	if f.hasBody {
		c.body = &body{c: c, chunked: f.contentLength < 0, remain: max(f.contentLength, 0), trailer: r.Trailer}
		c.body.left.Store(f.contentLength)
		r.Body = c.body
	} else {
		r.Body = http.NoBody
	}
	c.contWanted, c.contSent = f.expect, false
	c.contPending.Store(f.expect)
	w.reset(c, r, f)

	c.started.Store(now.UnixNano())
	st := watchRunning
	if !f.hasBody {
		st |= watchBodyDone
	}
	c.watch.Store(st)
	panicked := c.runHandler(w, r)
	if c.watch.Swap(0)&watchOn != 0 {
		c.stopWatch()
	}
	if panicked || c.hijacked {
		return false
	}
	w.finish()
	keep = w.reusable()
	if c.body != nil && !c.body.discard(keep) {
		keep = false
	}
	c.body = nil
	clear(w.header)
	return keep && c.werr == nil && c.readErr == nil && !c.s.shutting.Load()
}

// runHandler calls the handler; a panic other than http.ErrAbortHandler
// is logged, and any panic closes the connection.
func (c *conn) runHandler(w *response, r *http.Request) (panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			panicked = true
			if v != http.ErrAbortHandler && c.s.ErrorLog != nil {
				c.s.ErrorLog.Error("h1: handler panic", "remote", c.remote, "panic", v, "stack", string(debug.Stack()))
			}
			if c.body != nil {
				c.body.close()
			}
			c.bw.Reset(connWriter{c}) // drop what was not sent
		}
	}()
	h := c.s.Handler
	if r.RequestURI == "*" && r.Method == http.MethodOptions {
		h = globalOptions // as net/http: the server answers it
	}
	h.ServeHTTP(w, r)
	return false
}

// globalOptions answers "OPTIONS *" as net/http's server does.
var globalOptions = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "0")
	if r.ContentLength != 0 {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 4<<10))
	}
})

// maybeWatch starts the disconnect watch of a request that has run for
// check and whose body is done. The scanner calls it.
func (c *conn) maybeWatch(now, check int64) {
	v := c.watch.Load()
	if v != watchRunning|watchBodyDone || now-c.started.Load() < check {
		return
	}
	done := make(chan struct{})
	c.watchDone = done
	c.watchStop = false
	if !c.watch.CompareAndSwap(v, v|watchOn) {
		return
	}
	go c.watchConn(done)
}

// watchConn reads from the connection while the handler runs: EOF or an
// error means the client is gone, which cancels the context. Bytes read
// (a pipelined request) stay in the buffer.
func (c *conn) watchConn(done chan struct{}) {
	defer close(done)
	c.watchMu.Lock()
	if c.watchStop || c.r != c.w {
		c.watchMu.Unlock()
		return
	}
	c.r, c.w = 0, 0
	if !c.rdl.IsZero() {
		c.rdl = time.Time{}
		_ = c.nc.SetReadDeadline(time.Time{})
	}
	c.watchMu.Unlock()
	n, err := c.nc.Read(c.buf)
	c.w += n
	if n == 0 && err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return // stopped by stopWatch
		}
		c.readErr = err
		c.cancel(fmt.Errorf("%w: %w", errClientGone, err))
	}
}

// stopWatch ends the watch and waits for the watcher.
func (c *conn) stopWatch() {
	c.watchMu.Lock()
	c.watchStop = true
	_ = c.nc.SetReadDeadline(aLongTimeAgo)
	c.watchMu.Unlock()
	<-c.watchDone
	c.rdl = aLongTimeAgo // to be set again before the next read
}

// hijack hands the connection to the handler.
func (c *conn) hijack() (net.Conn, *bufio.ReadWriter, error) {
	if c.watch.Swap(0)&watchOn != 0 {
		c.stopWatch()
	}
	c.hijacked = true
	_ = c.nc.SetDeadline(time.Time{})
	left := bytes.Clone(c.buf[c.r:c.w])
	c.r = c.w
	var br *bufio.Reader
	if len(left) == 0 {
		br = bufio.NewReader(c.nc)
	} else {
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(left), c.nc), max(bufSize, len(left)))
		_, _ = br.Peek(len(left))
	}
	bw := c.bw
	c.bw = nil
	bw.Reset(c.nc)
	c.s.track(c, false)
	c.s.state(c.nc, http.StateHijacked)
	return c.nc, bufio.NewReadWriter(br, bw), nil
}
