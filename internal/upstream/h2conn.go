package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const (
	h2StreamWindow    = 4 << 20  // receive window per stream
	h2ConnWindow      = 16 << 20 // receive window per connection
	h2MaxHeaderList   = 10 << 20 // as net/http's default MaxResponseHeaderBytes
	h2DefaultStreams  = 100      // concurrent streams assumed until the server's SETTINGS
	h2InitialSendWin  = 65535    // the protocol's initial windows
	h2DefaultFrame    = 16384    // the protocol's initial SETTINGS_MAX_FRAME_SIZE
	h2LowerCacheLimit = 256      // lower-cased header names cached per connection
	h2AckDelay        = time.Millisecond
)

var (
	// errH2Refused marks a stream the server did not process: the request
	// may be sent again.
	errH2Refused = errors.New("http2: stream not processed by the server")
	errH2Closed  = errors.New("http2: connection closed")
	// errH2Lost marks a stream whose connection failed before any of its
	// response arrived: the server may or may not have processed it.
	errH2Lost = errors.New("http2: connection lost before the response")
)

// h2Conn is one HTTP/2 connection. The caller's goroutine writes (under
// wmu); one goroutine per connection, readLoop, reads and dispatches.
//
// Lock order: wmu, then mu.
type h2Conn struct {
	t  *h2Transport
	nc net.Conn

	wmu   sync.Mutex
	bw    *bufio.Writer
	wfr   *http2.Framer
	henc  *hpack.Encoder
	hbuf  bytes.Buffer
	lower map[string]string // canonical header name -> lower case
	werr  error             // sticky write error
	acks  *time.Timer       // flushes PING acks no request write took along
	ackOn bool              // acks is armed

	rfr *http2.Framer // readLoop's

	peerMaxFrame atomic.Uint32

	mu         sync.Mutex
	cond       sync.Cond // on mu: send windows grew or streams ended
	streams    map[uint32]*h2Stream
	nextID     uint32
	active     int    // streams reserved or open
	maxStreams uint32 // the server's SETTINGS_MAX_CONCURRENT_STREAMS
	sendWin    int64  // connection send window
	initWin    int64  // the server's SETTINGS_INITIAL_WINDOW_SIZE
	unacked    int64  // bytes consumed, not yet returned by WINDOW_UPDATE
	goaway     bool   // no new streams
	dead       bool
	err        error // why dead
	idleTimer  *time.Timer
}

// newH2Conn sends the client preface and settings on nc and starts the
// read loop.
func newH2Conn(t *h2Transport, nc net.Conn) (*h2Conn, error) {
	c := &h2Conn{t: t, nc: nc, streams: make(map[uint32]*h2Stream), nextID: 1,
		maxStreams: h2DefaultStreams, sendWin: h2InitialSendWin, initWin: h2InitialSendWin,
		lower: make(map[string]string)}
	c.cond.L = &c.mu
	c.peerMaxFrame.Store(h2DefaultFrame)
	c.bw = bufio.NewWriterSize(nc, 16<<10)
	c.wfr = http2.NewFramer(c.bw, nil)
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.rfr = http2.NewFramer(nil, bufio.NewReaderSize(nc, 16<<10))
	c.rfr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.rfr.MaxHeaderListSize = h2MaxHeaderList
	c.rfr.SetReuseFrames()

	io.WriteString(c.bw, http2.ClientPreface)
	c.wfr.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2StreamWindow},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: h2MaxHeaderList},
	)
	c.wfr.WriteWindowUpdate(0, h2ConnWindow-h2InitialSendWin)
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	go c.readLoop()
	return c, nil
}

// reserve takes a stream slot, false when the connection has no room.
// The transport's mu is held.
func (c *h2Conn) reserve() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead || c.goaway || uint32(c.active) >= c.maxStreams || c.nextID >= 1<<31-1 {
		return false
	}
	c.active++
	return true
}

// releaseLocked gives back a stream slot; an idle connection starts its
// idle timer, or closes at once when it is going away. mu held.
func (c *h2Conn) releaseLocked() {
	c.active--
	c.cond.Broadcast()
	if c.active > 0 || c.dead {
		return
	}
	d := c.t.idleTimeout()
	if c.goaway || c.t.closed.Load() {
		d = 0
	}
	if c.idleTimer == nil {
		c.idleTimer = time.AfterFunc(d, c.closeIfIdle)
	} else {
		c.idleTimer.Reset(d)
	}
}

// endLocked removes s from the open streams; mu held.
func (c *h2Conn) endLocked(s *h2Stream) {
	if s.id == 0 || c.streams[s.id] != s {
		return
	}
	delete(c.streams, s.id)
	c.releaseLocked()
	if s.stop != nil {
		s.stop()
	}
}

// closeIfIdle closes c when no stream uses it.
func (c *h2Conn) closeIfIdle() {
	c.mu.Lock()
	if c.active != 0 || c.dead {
		c.mu.Unlock()
		return
	}
	c.dead, c.err = true, errH2Closed
	c.mu.Unlock()
	c.t.remove(c)
	c.nc.Close()
}

// close ends the connection: open streams fail with err.
func (c *h2Conn) close(err error) {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead, c.err = true, err
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	for _, s := range c.streams {
		if s.resp == nil && len(s.buf) == 0 {
			s.failLocked(fmt.Errorf("%w: %w", errH2Lost, err))
		} else {
			s.failLocked(err)
		}
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	c.t.remove(c)
	c.nc.Close()
}

// flush writes what is buffered; wmu must be held. A failure kills the
// connection (by the caller, after releasing wmu).
func (c *h2Conn) flushLocked() error {
	if c.werr != nil {
		return c.werr
	}
	c.ackOn = false
	if err := c.bw.Flush(); err != nil {
		c.werr = err
		c.nc.Close() // the read loop fails the streams
		return err
	}
	return nil
}

// flush is flushLocked under wmu.
func (c *h2Conn) flush() error {
	c.wmu.Lock()
	err := c.flushLocked()
	c.wmu.Unlock()
	return err
}

// ackPing answers a PING. The ack waits up to h2AckDelay for a request's
// write to carry it: grpc-go servers ping about once per call to
// estimate the bandwidth-delay product, and an ack of its own would cost
// a write (and a wake-up of the server) per call.
func (c *h2Conn) ackPing(data [8]byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return
	}
	c.wfr.WritePing(true, data)
	if c.ackOn {
		return
	}
	c.ackOn = true
	if c.acks == nil {
		c.acks = time.AfterFunc(h2AckDelay, c.flushAsync)
	} else {
		c.acks.Reset(h2AckDelay)
	}
}

// writeRST resets stream id and flushes.
func (c *h2Conn) writeRST(id uint32, code http2.ErrCode) {
	c.wmu.Lock()
	if c.werr == nil {
		c.wfr.WriteRSTStream(id, code)
		c.flushLocked()
	}
	c.wmu.Unlock()
}

// writeWindowUpdates returns receive window to the server: the
// connection's (conn > 0) and a stream's (sid != 0).
func (c *h2Conn) writeWindowUpdates(conn int64, sid uint32, n int64) {
	c.wmu.Lock()
	if c.werr == nil {
		if conn > 0 {
			c.wfr.WriteWindowUpdate(0, uint32(conn))
		}
		if sid != 0 && n > 0 {
			c.wfr.WriteWindowUpdate(sid, uint32(n))
		}
		c.flushLocked()
	}
	c.wmu.Unlock()
}

// credit counts n bytes of the connection's receive window as consumed
// and returns the WINDOW_UPDATE increment due, 0 while batching. mu held.
func (c *h2Conn) creditLocked(n int64) int64 {
	c.unacked += n
	if c.unacked < h2ConnWindow/4 {
		return 0
	}
	n, c.unacked = c.unacked, 0
	return n
}

// writeHeaderBlock writes HEADERS (and CONTINUATION) for stream id from
// the block in c.hbuf; wmu held.
func (c *h2Conn) writeHeaderBlock(id uint32, endStream bool) error {
	block := c.hbuf.Bytes()
	max := int(c.peerMaxFrame.Load())
	first := true
	for first || len(block) > 0 {
		chunk := block
		if len(chunk) > max {
			chunk = chunk[:max]
		}
		block = block[len(chunk):]
		var err error
		if first {
			err = c.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: chunk,
				EndStream: endStream, EndHeaders: len(block) == 0})
		} else {
			err = c.wfr.WriteContinuation(id, len(block) == 0, chunk)
		}
		if err != nil {
			c.werr = err
			return err
		}
		first = false
	}
	return nil
}

// encodeHeaders hpack-encodes the request's header block into c.hbuf;
// wmu held.
func (c *h2Conn) encodeHeaders(o *h2Out) {
	c.hbuf.Reset()
	req := o.req
	e := c.henc
	e.WriteField(hpack.HeaderField{Name: ":method", Value: req.Method})
	e.WriteField(hpack.HeaderField{Name: ":scheme", Value: o.scheme})
	e.WriteField(hpack.HeaderField{Name: ":authority", Value: o.host})
	path := "/"
	if req.URL != nil {
		if p := req.URL.RequestURI(); p != "" {
			path = p
		}
	}
	e.WriteField(hpack.HeaderField{Name: ":path", Value: path})
	for k, vv := range req.Header {
		switch k {
		case "Host", "Content-Length", "Connection", "Proxy-Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade":
			continue
		case "Te":
			for _, v := range vv {
				if strings.EqualFold(v, "trailers") {
					e.WriteField(hpack.HeaderField{Name: "te", Value: "trailers"})
					break
				}
			}
			continue
		}
		name := c.lowerName(k)
		sensitive := uniquePerRequest(name)
		for _, v := range vv {
			e.WriteField(hpack.HeaderField{Name: name, Value: v, Sensitive: sensitive})
		}
	}
	switch {
	case o.n > 0:
		e.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.FormatInt(o.n, 10)})
	case o.n == 0 && (req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch):
		e.WriteField(hpack.HeaderField{Name: "content-length", Value: "0"})
	}
}

// uniquePerRequest tells the headers whose value changes with every
// request: hpack-indexing them would only churn the dynamic table, evicting
// the fields that do repeat.
func uniquePerRequest(name string) bool {
	switch name {
	case "grpc-timeout", "x-request-id", "traceparent", "x-b3-traceid", "x-b3-spanid":
		return true
	}
	return false
}

// lowerName returns k in lower case, cached per connection; wmu held.
func (c *h2Conn) lowerName(k string) string {
	if v, ok := c.lower[k]; ok {
		return v
	}
	v := strings.ToLower(k)
	if len(c.lower) < h2LowerCacheLimit {
		c.lower[k] = v
	}
	return v
}

// readLoop reads frames and hands them to their streams until the
// connection fails.
func (c *h2Conn) readLoop() {
	err := c.readFrames()
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		c.wmu.Lock()
		if c.werr == nil {
			c.wfr.WriteGoAway(0, http2.ErrCode(ce), nil)
			c.flushLocked()
		}
		c.wmu.Unlock()
	}
	if err == io.EOF {
		err = errH2Closed
	}
	c.close(fmt.Errorf("http2 read: %w", err))
}

func (c *h2Conn) readFrames() error {
	for {
		f, err := c.rfr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				c.resetStream(se.StreamID, se.Code, fmt.Errorf("http2: %w", se))
				continue
			}
			return err
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			c.onHeaders(f)
		case *http2.DataFrame:
			c.onData(f)
		case *http2.SettingsFrame:
			if err := c.onSettings(f); err != nil {
				return err
			}
		case *http2.WindowUpdateFrame:
			c.onWindowUpdate(f)
		case *http2.RSTStreamFrame:
			c.onRST(f)
		case *http2.PingFrame:
			if !f.IsAck() {
				c.ackPing(f.Data)
			}
		case *http2.GoAwayFrame:
			c.onGoAway(f)
		case *http2.PushPromiseFrame:
			return http2.ConnectionError(http2.ErrCodeProtocol) // push is disabled
		}
	}
}

// resetStream fails stream id with err and sends RST_STREAM code.
func (c *h2Conn) resetStream(id uint32, code http2.ErrCode, err error) {
	c.mu.Lock()
	s := c.streams[id]
	if s != nil {
		s.failLocked(err)
	}
	c.mu.Unlock()
	c.writeRST(id, code)
}

func (c *h2Conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	err := f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			c.mu.Lock()
			c.maxStreams = s.Val
			c.mu.Unlock()
		case http2.SettingInitialWindowSize:
			if s.Val > 1<<31-1 {
				return http2.ConnectionError(http2.ErrCodeFlowControl)
			}
			c.mu.Lock()
			delta := int64(s.Val) - c.initWin
			c.initWin = int64(s.Val)
			for _, st := range c.streams {
				st.sendWin += delta
			}
			c.cond.Broadcast()
			c.mu.Unlock()
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame.Store(s.Val)
		case http2.SettingHeaderTableSize:
			c.wmu.Lock()
			c.henc.SetMaxDynamicTableSize(s.Val)
			c.wmu.Unlock()
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.wmu.Lock()
	if c.werr == nil {
		c.wfr.WriteSettingsAck()
		c.flushLocked()
	}
	c.wmu.Unlock()
	return nil
}

func (c *h2Conn) onWindowUpdate(f *http2.WindowUpdateFrame) {
	c.mu.Lock()
	if f.StreamID == 0 {
		c.sendWin += int64(f.Increment)
	} else if s := c.streams[f.StreamID]; s != nil {
		s.sendWin += int64(f.Increment)
	}
	c.cond.Broadcast()
	c.mu.Unlock()
}

func (c *h2Conn) onRST(f *http2.RSTStreamFrame) {
	c.mu.Lock()
	s := c.streams[f.StreamID]
	if s != nil {
		var err error = http2.StreamError{StreamID: f.StreamID, Code: f.ErrCode}
		// Over the limit, a server answers REFUSED_STREAM or, when its
		// settings are acknowledged, PROTOCOL_ERROR (Go's does). A stream
		// that took the last slot can meet it without fault of ours: the
		// server may count a stream whose END_STREAM we have read as open
		// a moment longer.
		if f.ErrCode == http2.ErrCodeRefusedStream || f.ErrCode == http2.ErrCodeProtocol && s.atLimit && s.resp == nil {
			err = fmt.Errorf("%w: %w", errH2Refused, err)
		}
		s.failLocked(err)
	}
	c.mu.Unlock()
}

// onGoAway stops new streams on c and fails, as refused, those the server
// will not process.
func (c *h2Conn) onGoAway(f *http2.GoAwayFrame) {
	c.mu.Lock()
	c.goaway = true
	for id, s := range c.streams {
		if id > f.LastStreamID {
			s.failLocked(fmt.Errorf("%w: GOAWAY %v", errH2Refused, f.ErrCode))
		}
	}
	idle := c.active == 0
	c.mu.Unlock()
	c.t.remove(c)
	if idle {
		c.close(errH2Closed)
	}
}

func (c *h2Conn) onData(f *http2.DataFrame) {
	size := int64(f.Length)
	data := f.Data()
	c.mu.Lock()
	s := c.streams[f.StreamID]
	var conn int64
	if s == nil || s.recvDone || s.rerr != nil {
		// A stream already reset or ended: return its window at once.
		conn = c.creditLocked(size)
		c.mu.Unlock()
		if conn > 0 {
			c.writeWindowUpdates(conn, 0, 0)
		}
		return
	}
	if int64(len(s.buf)-s.off+len(data)) > h2StreamWindow {
		s.failLocked(http2.StreamError{StreamID: s.id, Code: http2.ErrCodeFlowControl})
		conn = c.creditLocked(size)
		c.mu.Unlock()
		c.writeRST(f.StreamID, http2.ErrCodeFlowControl)
		if conn > 0 {
			c.writeWindowUpdates(conn, 0, 0)
		}
		return
	}
	if pad := size - int64(len(data)); pad > 0 {
		conn = c.creditLocked(pad)
		s.unacked += pad
	}
	if s.off > 0 && s.off == len(s.buf) {
		s.buf, s.off = s.buf[:0], 0
	}
	s.buf = append(s.buf, data...)
	if f.StreamEnded() {
		s.recvDone = true
		s.maybeEndLocked()
	}
	s.signal()
	c.mu.Unlock()
	if conn > 0 {
		c.writeWindowUpdates(conn, 0, 0)
	}
}

// onHeaders takes a response's headers, or its trailers.
func (c *h2Conn) onHeaders(f *http2.MetaHeadersFrame) {
	c.mu.Lock()
	s := c.streams[f.StreamID]
	if s == nil || s.rerr != nil {
		c.mu.Unlock()
		return
	}
	got := s.resp != nil
	c.mu.Unlock()
	if f.Truncated {
		c.resetStream(f.StreamID, http2.ErrCodeProtocol, errors.New("http2: response headers too large"))
		return
	}
	if got {
		if !f.StreamEnded() {
			c.resetStream(f.StreamID, http2.ErrCodeProtocol, errors.New("http2: trailers without END_STREAM"))
			return
		}
		tr := make(http.Header, len(f.RegularFields()))
		for _, hf := range f.RegularFields() {
			k := http.CanonicalHeaderKey(hf.Name)
			tr[k] = append(tr[k], hf.Value)
		}
		c.mu.Lock()
		s.trailer = tr
		s.recvDone = true
		s.maybeEndLocked()
		s.signal()
		c.mu.Unlock()
		return
	}
	code, ok := parseStatus(f.PseudoValue("status"))
	if !ok {
		c.resetStream(f.StreamID, http2.ErrCodeProtocol, errors.New("http2: malformed :status"))
		return
	}
	if code < 200 { // 100 Continue, 103 Early Hints: wait for the final answer
		if f.StreamEnded() {
			c.resetStream(f.StreamID, http2.ErrCodeProtocol, errors.New("http2: 1xx with END_STREAM"))
		}
		return
	}
	resp := s.newResponse(code, f)
	c.mu.Lock()
	s.resp = resp
	if f.StreamEnded() {
		s.recvDone = true
		s.maybeEndLocked()
	}
	s.signal()
	c.mu.Unlock()
}

// parseStatus parses a three-digit :status without allocating.
func parseStatus(v string) (int, bool) {
	if len(v) != 3 {
		return 0, false
	}
	n := 0
	for i := range 3 {
		d := v[i]
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int(d-'0')
	}
	return n, n >= 100
}
