package upstream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

const (
	// h2SyncBodyMax is the largest body of known length read before the
	// headers are sent, to go out with them in one write.
	h2SyncBodyMax = 64 << 10
	// h2FlushDelay is how long a streaming body's read may block before
	// the frames already buffered are flushed without it.
	h2FlushDelay = 100 * time.Microsecond
)

// h2Out is a request on its way out, across attempts.
type h2Out struct {
	req          *http.Request
	body         io.ReadCloser // nil: none
	n            int64         // body length, -1 unknown
	host, scheme string
	data         []byte // the whole body, once buffered
	buffered     bool   // body read into data and closed
	streamed     bool   // body handed to a sending goroutine, which closes it
}

// h2Stream is one request/response exchange. Fields after id are under
// c.mu.
type h2Stream struct {
	c    *h2Conn
	req  *http.Request
	ctx  context.Context
	wake chan struct{} // cap 1: the response, data or an error arrived
	stop func() bool   // stops the context's AfterFunc
	id   uint32

	atLimit bool // opened in the connection's last free slot

	body     io.ReadCloser // request body being streamed
	bodyOnce sync.Once

	sendWin  int64
	sendDone bool  // END_STREAM sent
	sendErr  error // stop sending
	resp     *http.Response
	trailer  http.Header
	buf      []byte // received, unread data from off
	off      int
	unacked  int64 // consumed, not yet returned to the stream window
	recvDone bool  // END_STREAM received
	rerr     error // the response failed
	closed   bool  // response body closed
}

func (s *h2Stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// failLocked ends s with err: the response fails unless it has all
// arrived, the sender stops. c.mu held.
func (s *h2Stream) failLocked(err error) {
	c := s.c
	if s.sendErr == nil {
		s.sendErr = err
	}
	if !s.recvDone && s.rerr == nil {
		s.rerr = err
		c.unacked += int64(len(s.buf) - s.off) // returned with the next update
		s.buf, s.off = nil, 0
	}
	if s.body != nil && !s.sendDone {
		s.closeReqBody() // unblocks the sender's read
	}
	s.signal()
	c.cond.Broadcast()
	c.endLocked(s)
}

func (s *h2Stream) closeReqBody() { s.bodyOnce.Do(func() { s.body.Close() }) }

func (s *h2Stream) maybeEndLocked() {
	if s.recvDone && s.sendDone {
		s.c.endLocked(s)
	}
}

// abort fails s with err and resets it with CANCEL if it was open.
func (s *h2Stream) abort(err error) {
	c := s.c
	c.mu.Lock()
	open := s.id != 0 && c.streams[s.id] == s
	s.failLocked(err)
	c.mu.Unlock()
	if open {
		c.writeRST(s.id, http2.ErrCodeCancel)
	}
}

func (s *h2Stream) ctxDone() { s.abort(s.ctx.Err()) }

// roundTrip sends o on c, where a stream is reserved, and waits for the
// response headers.
func (c *h2Conn) roundTrip(o *h2Out) (*http.Response, error) {
	s := &h2Stream{c: c, req: o.req, ctx: o.req.Context(), wake: make(chan struct{}, 1)}
	if o.body != nil && !o.buffered && o.n >= 0 && o.n <= h2SyncBodyMax {
		o.data = make([]byte, o.n)
		_, err := io.ReadFull(o.body, o.data)
		o.body.Close()
		o.buffered = true
		if err != nil {
			c.mu.Lock()
			c.releaseLocked()
			c.mu.Unlock()
			return nil, bodyReadError{err}
		}
	}
	c.wmu.Lock()
	c.mu.Lock()
	if c.dead || c.goaway {
		c.releaseLocked()
		c.mu.Unlock()
		c.wmu.Unlock()
		return nil, fmt.Errorf("%w: connection going away", errH2Refused)
	}
	s.id = c.nextID
	c.nextID += 2
	s.sendWin = c.initWin
	s.atLimit = uint32(c.active) >= c.maxStreams
	c.streams[s.id] = s
	n := int64(len(o.data))
	sync := o.body == nil || o.buffered && n <= min(s.sendWin, c.sendWin)
	if sync {
		s.sendWin -= n
		c.sendWin -= n
		s.sendDone = true
	}
	c.mu.Unlock()
	c.encodeHeaders(o)
	err := c.writeHeaderBlock(s.id, sync && n == 0)
	if sync && n > 0 && err == nil {
		p := o.data
		max := int(c.peerMaxFrame.Load())
		for err == nil && len(p) > 0 {
			k := min(len(p), max)
			err = c.wfr.WriteData(s.id, k == len(p), p[:k])
			p = p[k:]
		}
	}
	if sync && err == nil {
		err = c.flushLocked()
	}
	c.wmu.Unlock()
	if err != nil {
		c.close(err)
		return nil, fmt.Errorf("%w: %w", errH2Refused, err)
	}
	if s.ctx.Done() != nil {
		stop := context.AfterFunc(s.ctx, s.ctxDone)
		c.mu.Lock()
		s.stop = stop
		c.mu.Unlock()
	}
	if !sync {
		body := o.body
		if o.buffered { // held in memory but over the send window
			body = io.NopCloser(bytes.NewReader(o.data))
		} else {
			o.streamed = true
		}
		c.mu.Lock()
		s.body = body
		c.mu.Unlock()
		go s.sendBody()
	}
	c.mu.Lock()
	for s.resp == nil && s.rerr == nil {
		c.mu.Unlock()
		<-s.wake
		c.mu.Lock()
	}
	resp, err := s.resp, s.rerr
	c.mu.Unlock()
	if resp == nil {
		return nil, err
	}
	return resp, nil
}

// sendBody streams s.body: each read becomes DATA frames, buffered and
// flushed when the next read blocks for h2FlushDelay, when the window runs
// out, or at the end.
func (s *h2Stream) sendBody() {
	c := s.c
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	defer s.closeReqBody()
	buf := *bp
	timer := time.AfterFunc(time.Hour, c.flushAsync)
	defer timer.Stop()
	for {
		timer.Reset(h2FlushDelay) // the headers or earlier data may sit in the buffer
		n, rerr := s.body.Read(buf)
		timer.Stop()
		if rerr != nil && rerr != io.EOF {
			s.abort(bodyReadError{rerr})
			return
		}
		if err := s.writeData(buf[:n], rerr == io.EOF); err != nil || rerr == io.EOF {
			return
		}
	}
}

// flushAsync flushes for a sender whose read blocks.
func (c *h2Conn) flushAsync() {
	if err := c.flush(); err != nil {
		c.close(err)
	}
}

// writeData writes p as DATA frames within the send windows, END_STREAM on
// the last when end. It waits for window, flushing first.
func (s *h2Stream) writeData(p []byte, end bool) error {
	c := s.c
	for {
		c.mu.Lock()
		var n int64
		flushed := false
		for {
			if s.sendErr != nil {
				err := s.sendErr
				c.mu.Unlock()
				return err
			}
			if len(p) == 0 {
				break
			}
			n = min(int64(len(p)), s.sendWin, c.sendWin, int64(c.peerMaxFrame.Load()))
			if n > 0 {
				s.sendWin -= n
				c.sendWin -= n
				break
			}
			if !flushed { // the server acknowledges only what it has seen
				c.mu.Unlock()
				c.flushAsync()
				c.mu.Lock()
				flushed = true
				continue
			}
			c.cond.Wait()
		}
		c.mu.Unlock()
		last := end && int(n) == len(p)
		if len(p) == 0 && !end {
			return nil
		}
		c.wmu.Lock()
		c.mu.Lock()
		stopped := s.sendErr // checked under wmu: no DATA after our RST_STREAM
		c.mu.Unlock()
		if stopped != nil {
			c.wmu.Unlock()
			return stopped
		}
		err := c.wfr.WriteData(s.id, last, p[:n])
		if err == nil && last {
			err = c.flushLocked()
		}
		if err != nil {
			c.werr = err
		}
		c.wmu.Unlock()
		if err != nil {
			c.close(err)
			return err
		}
		p = p[n:]
		if last {
			c.mu.Lock()
			s.sendDone = true
			s.maybeEndLocked()
			c.mu.Unlock()
			return nil
		}
		if len(p) == 0 {
			return nil
		}
	}
}

// newResponse builds the response of s from its headers.
func (s *h2Stream) newResponse(code int, f *http2.MetaHeadersFrame) *http.Response {
	fields := f.RegularFields()
	h := make(http.Header, len(fields))
	vals := make([]string, len(fields))
	for i, hf := range fields {
		k := http.CanonicalHeaderKey(hf.Name)
		vals[i] = hf.Value
		if v := h[k]; v != nil {
			h[k] = append(v, hf.Value)
		} else {
			h[k] = vals[i : i+1 : i+1]
		}
	}
	resp := &http.Response{Status: statusText(code), StatusCode: code, Proto: "HTTP/2.0",
		ProtoMajor: 2, Header: h, Request: s.req, ContentLength: -1}
	if f.StreamEnded() {
		resp.ContentLength = 0
		resp.Body = http.NoBody
	} else {
		if v := h["Content-Length"]; len(v) == 1 {
			if n, err := strconv.ParseInt(v[0], 10, 64); err == nil && n >= 0 {
				resp.ContentLength = n
			}
		}
		resp.Body = &h2Body{s: s, resp: resp}
	}
	for _, v := range h["Trailer"] {
		for k := range strings.SplitSeq(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				if resp.Trailer == nil {
					resp.Trailer = make(http.Header)
				}
				resp.Trailer[http.CanonicalHeaderKey(k)] = nil
			}
		}
	}
	return resp
}

func statusText(code int) string {
	if code == http.StatusOK {
		return "200 OK"
	}
	return strconv.Itoa(code) + " " + http.StatusText(code)
}

// h2Body is a response body: the stream's received data, then its
// trailers into resp.Trailer at EOF.
type h2Body struct {
	s    *h2Stream
	resp *http.Response
}

func (b *h2Body) Read(p []byte) (int, error) {
	s := b.s
	c := s.c
	c.mu.Lock()
	for !s.closed && s.off == len(s.buf) && s.rerr == nil && !s.recvDone {
		c.mu.Unlock()
		<-s.wake
		c.mu.Lock()
	}
	switch {
	case s.closed:
		c.mu.Unlock()
		return 0, errBodyClosed
	case s.off == len(s.buf) && s.rerr != nil:
		err := s.rerr
		c.mu.Unlock()
		return 0, err
	}
	n := copy(p, s.buf[s.off:])
	s.off += n
	if s.off == len(s.buf) {
		s.buf, s.off = s.buf[:0], 0
	}
	conn := c.creditLocked(int64(n))
	var sn int64
	if !s.recvDone {
		s.unacked += int64(n)
		if s.unacked >= h2StreamWindow/4 {
			sn, s.unacked = s.unacked, 0
		}
	}
	var err error
	if s.recvDone && s.off == len(s.buf) {
		err = io.EOF
		b.setTrailer()
	}
	c.mu.Unlock()
	if conn > 0 || sn > 0 {
		c.writeWindowUpdates(conn, s.id, sn)
	}
	return n, err
}

// setTrailer hands the trailers over at EOF; c.mu held.
func (b *h2Body) setTrailer() {
	if b.s.trailer == nil {
		return
	}
	if b.resp.Trailer == nil {
		b.resp.Trailer = b.s.trailer
		return
	}
	for k, v := range b.s.trailer {
		b.resp.Trailer[k] = v
	}
}

// Close ends the exchange: a stream still open is reset (CANCEL).
func (b *h2Body) Close() error {
	s := b.s
	c := s.c
	c.mu.Lock()
	if s.closed {
		c.mu.Unlock()
		return nil
	}
	s.closed = true
	conn := c.creditLocked(int64(len(s.buf) - s.off))
	s.buf, s.off = nil, 0
	open := c.streams[s.id] == s
	if open {
		s.failLocked(errBodyClosed)
	}
	s.signal()
	c.mu.Unlock()
	if open {
		c.writeRST(s.id, http2.ErrCodeCancel)
	}
	if conn > 0 {
		c.writeWindowUpdates(conn, 0, 0)
	}
	if s.stop != nil {
		s.stop()
	}
	return nil
}
