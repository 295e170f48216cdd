package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// syncBodyMax is the largest request body written on the caller's
// goroutine before the response is read. Larger or chunked bodies are
// written by a goroutine of their own while the caller reads the
// response, so a server that answers before reading the whole body (or
// streams its answer while reading, full duplex) cannot deadlock the
// exchange.
const syncBodyMax = 16 << 10

// aLongTimeAgo, as a deadline, makes blocked reads and writes return.
var aLongTimeAgo = time.Unix(1, 0)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// conn is one HTTP/1.1 connection. One request uses it at a time; between
// requests it sits in its endpoint's idle list.
type conn struct {
	nc      net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	ep      *endpoint
	idleAt  time.Time
	poke    func() // c.expire, kept to hand to context.AfterFunc without allocating
	noBlock bool   // reads fail instead of blocking: used to drain only what arrived
}

// connReader feeds c.br from the socket.
type connReader struct{ c *conn }

var errWouldBlock = errors.New("would block")

func (r connReader) Read(p []byte) (int, error) {
	if r.c.noBlock {
		return 0, errWouldBlock
	}
	return r.c.nc.Read(p)
}

// expire makes pending and future I/O on c fail; it runs when the
// request's context ends.
func (c *conn) expire() { c.nc.SetDeadline(aLongTimeAgo) }

// bodyReadError is a failure to read the request body (the client's side),
// as opposed to a failure to write to the upstream connection.
type bodyReadError struct{ err error }

func (e bodyReadError) Error() string { return "read request body: " + e.err.Error() }
func (e bodyReadError) Unwrap() error { return e.err }

func (e *endpoint) roundTripH1(req *http.Request) (*http.Response, bool, error) {
	ctx := req.Context()
	body := req.Body
	n := req.ContentLength
	switch {
	case body == nil || body == http.NoBody:
		body, n = nil, 0
	case n == 0: // as in net/http: a body with length 0 is of unknown length
		n = -1
	}
	if err := ctx.Err(); err != nil {
		return nil, true, fmt.Errorf("upstream %s: %w", e.addr, err)
	}
	for attempt := 0; ; attempt++ {
		var c *conn
		if attempt == 0 {
			c = e.getLive(body != nil && req.GetBody == nil)
		}
		reused := c != nil
		if c == nil {
			var err error
			if c, err = e.newConn(ctx); err != nil {
				// After a stale pooled connection, a request without a
				// body is as untouched as before it: another endpoint
				// may take it (the endpoint died since it was pooled).
				if attempt == 0 || body == nil {
					return nil, errors.Is(err, ErrConnect), err
				}
				closeBody(body)
				return nil, false, err
			}
		}
		resp, stale, err := c.roundTrip(req, body, n, reused)
		if err == nil || !stale || attempt > 0 {
			return resp, false, err
		}
		// A pooled connection the server had closed: replay on a fresh one
		// if the body can be had again.
		if body != nil {
			if req.GetBody == nil {
				return nil, false, err
			}
			if body, err = req.GetBody(); err != nil {
				return nil, false, fmt.Errorf("upstream %s: replay body: %w", e.addr, err)
			}
		}
	}
}

// getLive takes an idle connection. With probe set (the request's body
// cannot be replayed) it first checks that the server has not closed it.
func (e *endpoint) getLive(probe bool) *conn {
	for {
		c := e.get()
		if c == nil || !probe || alive(c.nc) {
			return c
		}
		c.nc.Close()
	}
}

// roundTrip runs one exchange on c and always closes body. stale reports
// that c, a reused connection, turned out closed before the server saw the
// request, so the request may be replayed.
func (c *conn) roundTrip(req *http.Request, body io.ReadCloser, n int64, reused bool) (resp *http.Response, stale bool, err error) {
	ctx := req.Context()
	var stop func() bool
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, c.poke)
	}
	if err := c.writeHeader(req, n, body == nil); err != nil {
		c.abort(stop)
		closeBody(body)
		return nil, false, fmt.Errorf("upstream %s: %w", c.ep.addr, err)
	}
	var wdone chan error
	switch {
	case body == nil:
		err = c.bw.Flush()
	case n >= 0 && n <= syncBodyMax:
		err = c.writeBody(body, n, nil)
		body.Close()
	default:
		wdone = make(chan error, 1)
		go c.writeAsync(req, body, n, wdone)
	}
	if err != nil {
		c.abort(stop)
		var be bodyReadError
		return nil, reused && !errors.As(err, &be) && ctx.Err() == nil, c.wrap(ctx, err)
	}
	if _, err = c.br.Peek(1); err != nil {
		c.abort(stop)
		if werr := writerErr(wdone); werr != nil {
			err = werr
		}
		stale = reused && wdone == nil && ctx.Err() == nil &&
			(err == io.EOF || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
		return nil, stale, c.wrap(ctx, err)
	}
	for {
		resp, err = http.ReadResponse(c.br, req)
		if err != nil {
			c.abort(stop)
			return nil, false, c.wrap(ctx, err)
		}
		// Interim responses (100 Continue, 103 Early Hints) are dropped.
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body = &upgraded{c: c, stop: stop}
		return resp, false, nil
	}
	keep := !resp.Close && !req.Close
	if resp.Body == http.NoBody {
		c.release(keep, stop, wdone)
		return resp, false, nil
	}
	resp.Body = &respBody{c: c, rc: resp.Body, ctx: ctx, stop: stop, wdone: wdone, keep: keep}
	return resp, false, nil
}

// writerErr returns the error of a finished body writer, nil if it has not
// finished or there is none.
func writerErr(wdone chan error) error {
	if wdone == nil {
		return nil
	}
	select {
	case err := <-wdone:
		wdone <- err // keep it for release
		return err
	default:
		return nil
	}
}

// abort ends an exchange that failed: the connection cannot be reused.
func (c *conn) abort(stop func() bool) {
	if stop != nil {
		stop()
	}
	c.nc.Close()
}

// release ends an exchange whose response is complete: c goes back to the
// pool if keep holds, the context did not fire and the body writer is done.
func (c *conn) release(keep bool, stop func() bool, wdone chan error) {
	if stop != nil && !stop() {
		keep = false // the context fired: c's deadline was poked
	}
	if wdone != nil && keep {
		select {
		case err := <-wdone:
			keep = err == nil
		default:
			// The response ended before the body writer returned: it is
			// finishing (usual: the server needed the whole body), or the
			// server answered early and will drain or close. Wait a little,
			// then decide off the caller's path, within a bound.
			t := time.NewTimer(writerWait)
			select {
			case err := <-wdone:
				t.Stop()
				keep = err == nil
			case <-t.C:
				go c.releaseAfterWriter(wdone)
				return
			}
		}
	}
	if keep {
		c.ep.put(c)
	} else {
		c.nc.Close()
	}
}

// writerWait is how long a finished response waits on the caller's
// goroutine for its request body writer; writerGrace bounds the wait in
// the background after that, before the connection is given up.
const (
	writerWait  = 20 * time.Millisecond
	writerGrace = time.Second
)

func (c *conn) releaseAfterWriter(wdone chan error) {
	t := time.NewTimer(writerGrace)
	defer t.Stop()
	select {
	case err := <-wdone:
		if err == nil {
			c.ep.put(c)
			return
		}
	case <-t.C:
	}
	c.nc.Close()
}

// wrap annotates an I/O error, surfacing the context's error when the
// context is why the I/O failed.
func (c *conn) wrap(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("upstream %s: %w: %w", c.ep.addr, cerr, err)
	}
	return fmt.Errorf("upstream %s: %w", c.ep.addr, err)
}

func (c *conn) writeAsync(req *http.Request, body io.ReadCloser, n int64, wdone chan error) {
	err := c.writeBody(body, n, req.Trailer)
	body.Close()
	var be bodyReadError
	if errors.As(err, &be) {
		c.nc.Close() // the request cannot complete; wake the reader
	}
	wdone <- err
}

// writeHeader buffers the request line and header. n < 0 means a chunked
// body.
func (c *conn) writeHeader(req *http.Request, n int64, noBody bool) error {
	w := c.bw
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if !validToken(method) {
		return fmt.Errorf("invalid method %q", method)
	}
	w.WriteString(method)
	w.WriteByte(' ')
	if u := req.URL; u.Opaque != "" {
		w.WriteString(u.RequestURI())
	} else {
		p := u.EscapedPath()
		if p == "" {
			p = "/"
		}
		w.WriteString(p)
		if u.ForceQuery || u.RawQuery != "" {
			w.WriteByte('?')
			w.WriteString(u.RawQuery)
		}
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if host == "" {
		host = c.ep.host
	}
	if !validValue(host) {
		return fmt.Errorf("invalid host %q", host)
	}
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")
	for k, vv := range req.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if !validToken(k) {
			return fmt.Errorf("invalid header name %q", k)
		}
		for _, v := range vv {
			if !validValue(v) {
				return fmt.Errorf("invalid value for header %q", k)
			}
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	switch {
	case n < 0:
		w.WriteString("Transfer-Encoding: chunked\r\n")
		if len(req.Trailer) > 0 {
			w.WriteString("Trailer: ")
			first := true
			for k := range req.Trailer {
				if !validToken(k) {
					return fmt.Errorf("invalid trailer name %q", k)
				}
				if !first {
					w.WriteString(", ")
				}
				first = false
				w.WriteString(k)
			}
			w.WriteString("\r\n")
		}
	case n > 0 || noBody && (req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch):
		w.WriteString("Content-Length: ")
		w.Write(strconv.AppendInt(w.AvailableBuffer(), n, 10))
		w.WriteString("\r\n")
	}
	if req.Close && req.Header["Connection"] == nil {
		w.WriteString("Connection: close\r\n")
	}
	_, err := w.WriteString("\r\n")
	return err
}

// writeBody streams body after the header: n bytes, or chunked when n < 0
// followed by trailer. It flushes after every read so a slow, streaming
// body reaches the server as it comes.
func (c *conn) writeBody(body io.Reader, n int64, trailer http.Header) error {
	w := c.bw
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var written int64
	for {
		p := buf
		if n >= 0 {
			if rem := n - written; rem < int64(len(p)) {
				p = p[:rem]
			}
			if len(p) == 0 {
				break
			}
		}
		nr, rerr := body.Read(p)
		if nr > 0 {
			if n < 0 {
				w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(nr), 16))
				w.WriteString("\r\n")
			}
			w.Write(p[:nr])
			if n < 0 {
				w.WriteString("\r\n")
			}
			written += int64(nr)
			if err := w.Flush(); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return bodyReadError{rerr}
		}
	}
	if n >= 0 {
		if written < n {
			return bodyReadError{fmt.Errorf("%w: %d of %d bytes", io.ErrUnexpectedEOF, written, n)}
		}
		return nil // already flushed
	}
	w.WriteString("0\r\n")
	for k, vv := range trailer {
		if !validToken(k) {
			return fmt.Errorf("invalid trailer name %q", k)
		}
		for _, v := range vv {
			if !validValue(v) {
				return fmt.Errorf("invalid value for trailer %q", k)
			}
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	w.WriteString("\r\n")
	return w.Flush()
}

// tokenChars are the characters of an RFC 9110 token.
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChars[s[i]] {
			return false
		}
	}
	return true
}

// validValue rejects control characters, CR and LF above all, which would
// let a value inject header lines.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}
