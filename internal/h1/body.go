package h1

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// maxChunkLine bounds a chunk-size line, extensions included.
const maxChunkLine = 4096

var (
	errChunkSize   = errors.New("h1: malformed chunk size line")
	errChunkEnd    = errors.New("h1: malformed chunk end")
	errTrailer     = errors.New("h1: malformed trailer field")
	errTrailerSize = errors.New("h1: trailer section too large")
)

// body is a request body as framed by Content-Length or chunked. Read may
// run on any goroutine (an upstream writer), even after the handler
// returned: mu serialises it with the server's clean-up, after which
// reads fail.
type body struct {
	c       *conn
	mu      sync.Mutex
	chunked bool
	remain  int64 // Content-Length: bytes left; chunked: left in this chunk
	crlf    bool  // chunked: the CRLF after chunk data is due
	eof     bool
	closed  bool
	err     error
	trailer http.Header
	done    atomic.Bool  // eof, for the response side
	left    atomic.Int64 // Content-Length bytes left, for the response side
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return 0, http.ErrBodyReadAfterClose
	case b.eof:
		return 0, io.EOF
	case b.err != nil:
		return 0, b.err
	case len(p) == 0:
		return 0, nil
	}
	c := b.c
	if c.contPending.Load() {
		c.sendContinue()
	}
	var n int
	var err error
	if b.chunked {
		n, err = b.readChunked(p)
	} else {
		n, err = b.readLength(p)
	}
	switch {
	case err == io.EOF:
		b.eof = true
		b.done.Store(true)
		c.watch.Or(watchBodyDone)
	case err != nil:
		b.err = err
	}
	return n, err
}

// Close makes further reads fail; what is left is dealt with after the
// handler returns.
func (b *body) Close() error {
	b.close()
	return nil
}

func (b *body) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

func (b *body) readLength(p []byte) (int, error) {
	if b.remain == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.c.readData(p)
	b.remain -= int64(n)
	b.left.Store(b.remain)
	switch {
	case b.remain == 0:
		return n, io.EOF
	case n == 0 && err == io.EOF:
		return 0, io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *body) readChunked(p []byte) (int, error) {
	c := b.c
	for b.remain == 0 {
		if b.crlf {
			line, err := c.readLine(2)
			if err != nil {
				return 0, err
			}
			if len(line) != 0 {
				return 0, errChunkEnd
			}
			b.crlf = false
		}
		line, err := c.readLine(maxChunkLine)
		if err != nil {
			return 0, err
		}
		size, ok := parseChunkSize(line)
		if !ok {
			return 0, errChunkSize
		}
		if size == 0 {
			return 0, b.readTrailers()
		}
		b.remain, b.crlf = size, true
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := c.readData(p)
	b.remain -= int64(n)
	if n == 0 && err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if n > 0 {
		err = nil
	}
	return n, err
}

// readTrailers reads the trailer section into the request's Trailer,
// bounded by MaxHeaderBytes, and returns io.EOF when it is well formed.
// Fields that frame or route the message are dropped.
func (b *body) readTrailers() error {
	total := 0
	for {
		line, err := b.c.readLine(b.c.st.maxHeader)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return io.EOF
		}
		if total += len(line) + 2; total > b.c.st.maxHeader {
			return errTrailerSize
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || line[0] == ' ' || line[0] == '\t' {
			return errTrailer
		}
		k, ok := canonicalKey(string(line[:colon]))
		v := trimOWS(string(line[colon+1:]))
		if !ok || !validValue(v) {
			return errTrailer
		}
		switch k {
		case "Content-Length", "Transfer-Encoding", "Trailer", "Host":
			continue
		}
		if b.trailer == nil {
			b.trailer = http.Header{}
			b.c.req.Trailer = b.trailer
		}
		b.trailer[k] = append(b.trailer[k], v)
	}
}

// parseChunkSize parses chunk-size [ BWS ";" chunk-ext ], the extensions
// skipped (but checked for control bytes).
func parseChunkSize(line []byte) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto ext
		}
		if i >= 15 {
			return 0, false
		}
		n = n<<4 | int64(d)
	}
ext:
	if i == 0 {
		return 0, false
	}
	rest := line[i:]
	for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
		rest = rest[1:]
	}
	if len(rest) > 0 {
		if rest[0] != ';' {
			return 0, false
		}
		for _, c := range rest {
			if c < ' ' && c != '\t' || c == 0x7f {
				return 0, false
			}
		}
	}
	return n, true
}

// readData reads body bytes: from the buffer if it holds some, else from
// the connection, directly into p when p is large.
func (c *conn) readData(p []byte) (int, error) {
	if c.r < c.w {
		n := copy(p, c.buf[c.r:c.w])
		c.r += n
		return n, nil
	}
	if !c.draining {
		c.clearDeadline()
	}
	if len(p) >= len(c.buf)/2 {
		return c.nc.Read(p)
	}
	c.r, c.w = 0, 0
	if err := c.fill(); err != nil {
		return 0, err
	}
	n := copy(p, c.buf[c.r:c.w])
	c.r += n
	return n, nil
}

// readLine returns the next CRLF-terminated line without its CRLF,
// valid until the next read. A line longer than max, or one ending in a
// bare LF, fails.
func (c *conn) readLine(max int) ([]byte, error) {
	searched := 0
	for {
		if i := bytes.IndexByte(c.buf[c.r+searched:c.w], '\n'); i >= 0 {
			i += c.r + searched
			if i == c.r || c.buf[i-1] != '\r' {
				return nil, errChunkSize
			}
			line := c.buf[c.r : i-1]
			c.r = i + 1
			if bytes.IndexByte(line, '\r') >= 0 {
				return nil, errChunkSize
			}
			return line, nil
		}
		searched = c.w - c.r
		if searched > max+1 {
			return nil, errChunkSize
		}
		if !c.makeRoom(max + 2) {
			return nil, errChunkSize
		}
		if !c.draining {
			c.clearDeadline()
		}
		if err := c.fill(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// sendContinue answers Expect: 100-continue, unless the response has
// started.
func (c *conn) sendContinue() {
	c.contMu.Lock()
	if c.contPending.Load() {
		c.contSent = true
		_, _ = connWriter{c}.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
		// Only now: the response side waits on contMu while it is set.
		c.contPending.Store(false)
	}
	c.contMu.Unlock()
}

// endContinue makes a pending 100-continue moot: the final response
// starts.
func (c *conn) endContinue() {
	if c.contPending.Load() {
		c.contMu.Lock()
		c.contPending.Store(false)
		c.contMu.Unlock()
	}
}

// discard runs after the handler: it ends the body and, when the
// connection is to be kept, reads what is left of it up to maxDrain. It
// tells whether the connection is still in step with the client.
func (b *body) discard(keep bool) bool {
	c := b.c
	if !b.mu.TryLock() {
		// A read outlived the handler, on an upstream writer: make it
		// return, and give up the connection.
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
		b.mu.Lock()
		c.rdl = aLongTimeAgo
		b.closed = true
		b.mu.Unlock()
		return false
	}
	defer b.mu.Unlock()
	b.closed = true
	switch {
	case b.eof:
		return true
	case !keep || b.err != nil:
		return false
	case c.contWanted && !c.contSent:
		return false // the client may be waiting to send it, or not send it
	case !b.chunked && b.remain > maxDrain:
		return false
	}
	if c.st.headerTimeout > 0 {
		c.setReadDeadline(time.Now().Add(c.st.headerTimeout))
	}
	c.draining = true
	defer func() { c.draining = false }()
	var scratch [2048]byte
	for total := 0; total <= maxDrain; {
		var n int
		var err error
		if b.chunked {
			n, err = b.readChunked(scratch[:])
		} else {
			n, err = b.readLength(scratch[:])
		}
		total += n
		if err == io.EOF {
			b.eof = true
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}
