package h1

import (
	"crypto/tls"
	"encoding/binary"
	"net"

	"golang.org/x/net/http2/hpack"
)

// guard sits between an HTTP/2 connection and the HTTP/2 server reading
// it (golang.org/x/net/http2), and makes the server follow RFC 9113 where
// it does not on its own:
//
//   - A request carrying a connection-specific field (connection,
//     keep-alive, proxy-connection, transfer-encoding, upgrade), a TE
//     other than "trailers", an invalid or conflicting content-length, or
//     a field value with leading or trailing whitespace, or whose
//     content-length differs from the sum of its DATA, is malformed
//     (§8.1.1, §8.2.1, §8.2.2, RFC 9110 §8.6): a stream error
//     PROTOCOL_ERROR. The server answers 400 to some, forwards others,
//     and fails only the body of a short one. The guard decodes every
//     header block with its own HPACK decoder (its dynamic table follows
//     the server's, fed the same blocks) and ends a malformed block with
//     fields the server resets the stream for: two host fields in a
//     request (the server opens the stream, then resets it, so it ignores
//     the DATA the client already sent), an invalid name in trailers. The
//     server's HPACK state is untouched and the handler never sees the
//     request. A body shorter than its content-length gets, in place of
//     its END_STREAM, trailers with an invalid name.
//   - A SETTINGS frame may repeat a setting; its values are processed in
//     order (§6.5.3). The server refuses repeats as a connection error,
//     so the guard keeps only the last value of each setting (the
//     outcome of processing them in order) and drops unknown settings,
//     which must be ignored (§6.5.2). If a value is invalid, the frame is
//     cut after it so that the server reports that value's error.
//
// Frames are otherwise handed on as they are, DATA payloads without a
// copy when the buffer is empty. A frame the server is going to refuse as
// a connection error (a header block out of sequence, bad padding, an
// HPACK error, a frame over the size limit) turns the guard off: the
// server ends the connection on it.
//
// One goroutine (the server's frame reader) calls Read; the other
// methods are the connection's own.
type guard struct {
	net.Conn

	buf   []byte
	r, w  int    // unread bytes: buf[r:w]
	ready int    // vetted bytes at buf[r:], handed out first
	extra []byte // bytes handed out after ready (an injected frame)
	pass  int    // payload bytes of the current frame handed on unvetted
	off   bool   // stop vetting: everything is handed on

	maxFrame int // the server's SETTINGS_MAX_FRAME_SIZE

	dec     *hpack.Decoder
	inBlock bool   // a header block awaits its CONTINUATION
	sid     uint32 // stream of the header block
	maxSid  uint32 // highest stream a request opened
	blk     blockCheck
	bodies  []h2body // requests with a content-length and a body to come

	reqPoison [9 + len(reqPoison)]byte
	trlPoison [9 + len(trlPoison)]byte
}

// blockCheck is what one header block showed of its validity.
type blockCheck struct {
	bad     bool
	request bool // opens a stream; else trailers
	end     bool // ends the stream
	hasClen bool
	clen    string
	clenVal int64
}

// h2body is a request body with a content-length: left is what it still
// owes.
type h2body struct {
	sid  uint32
	left int64
}

const (
	guardBufSize = 4 << 10
	prefaceLen   = len(h2Preface)

	frameData         = 0x0
	frameHeaders      = 0x1
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	frameContinuation = 0x9

	flagAck        = 0x1
	flagEndStream  = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20

	// maxVetSettings bounds the SETTINGS frames rewritten; the server
	// refuses more than 100 settings anyway.
	maxVetSettings = 100 * 6

	// maxBodies bounds the bodies tracked; past it the oldest goes
	// unchecked.
	maxBodies = 256

	// reqPoison, HPACK literals without indexing, is two host fields:
	// the server opens the stream and resets it with PROTOCOL_ERROR.
	reqPoison = "\x00\x04host\x01p\x00\x04host\x01p"
	// trlPoison is a field named "Malformed", invalid in HTTP/2
	// (uppercase): the server refuses the block with a stream error
	// PROTOCOL_ERROR (§8.2.1).
	trlPoison = "\x00\x09Malformed\x00"
)

// tlsGuard is a guard over a TLS connection: the server reads the TLS
// state (for Request.TLS and the RFC 9113 §9.2 checks) through
// ConnectionState.
type tlsGuard struct{ *guard }

type connectionStater interface {
	ConnectionState() tls.ConnectionState
}

func (t tlsGuard) ConnectionState() tls.ConnectionState {
	return t.Conn.(connectionStater).ConnectionState()
}

// newGuard wraps c, whose first bytes are the client preface. maxFrame
// and tableSize are the server's SETTINGS_MAX_FRAME_SIZE and
// SETTINGS_HEADER_TABLE_SIZE.
func newGuard(c net.Conn, maxFrame int, tableSize uint32) *guard {
	g := &guard{Conn: c, buf: make([]byte, guardBufSize), pass: prefaceLen, maxFrame: maxFrame}
	g.dec = hpack.NewDecoder(tableSize, g.field)
	copy(g.reqPoison[9:], reqPoison)
	g.reqPoison[2] = byte(len(reqPoison))
	g.reqPoison[3] = frameContinuation
	g.reqPoison[4] = flagEndHeaders
	copy(g.trlPoison[9:], trlPoison)
	g.trlPoison[2] = byte(len(trlPoison))
	return g
}

// wrap returns g as the net.Conn to serve, a tlsGuard over TLS.
func (g *guard) wrap() net.Conn {
	if _, ok := g.Conn.(connectionStater); ok {
		return tlsGuard{g}
	}
	return g
}

func (g *guard) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if g.ready > 0 {
			n := copy(p, g.buf[g.r:g.r+g.ready])
			g.r += n
			g.ready -= n
			return n, nil
		}
		if g.pass > 0 || (g.off && len(g.extra) == 0) {
			if g.r < g.w {
				g.ready = g.w - g.r
				if !g.off {
					g.ready = min(g.ready, g.pass)
					g.pass -= g.ready
				}
				continue
			}
			// Nothing buffered: read straight into p.
			if !g.off && len(p) > g.pass {
				p = p[:g.pass]
			}
			n, err := g.Conn.Read(p)
			if !g.off {
				g.pass -= n
			}
			return n, err
		}
		if len(g.extra) > 0 {
			n := copy(p, g.extra)
			g.extra = g.extra[n:]
			return n, nil
		}
		if err := g.frame(); err != nil {
			return 0, err
		}
	}
}

// frame vets the frame at buf[r:], reading what it needs of it, and sets
// what is to be handed on.
func (g *guard) frame() error {
	if err := g.fill(9); err != nil {
		return err
	}
	h := g.buf[g.r : g.r+9]
	length := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	typ, flags := h[3], h[4]
	sid := binary.BigEndian.Uint32(h[5:]) & (1<<31 - 1)
	vet := false
	switch typ {
	case frameHeaders, frameContinuation:
		vet = length <= g.maxFrame
		if (typ == frameHeaders) == g.inBlock || (typ == frameContinuation && sid != g.sid) {
			vet = false // the server refuses the sequence
		}
		if !vet {
			g.off = true
		}
	case frameSettings:
		vet = sid == 0 && flags&flagAck == 0 && length%6 == 0 && length <= maxVetSettings
	}
	if g.inBlock && typ != frameContinuation {
		g.off = true // the server refuses anything inside a header block
	}
	if g.off {
		g.ready, g.pass = 9, length
		return nil
	}
	switch {
	case typ == frameData && len(g.bodies) > 0:
		return g.data(length, flags, sid)
	case typ == frameRSTStream && len(g.bodies) > 0:
		g.untrack(sid)
	}
	if !vet {
		g.ready, g.pass = 9, length
		return nil
	}
	if err := g.fill(9 + length); err != nil {
		return err
	}
	if typ == frameSettings {
		g.settings(length)
		return nil
	}
	g.ready = 9 + length
	frag := g.buf[g.r+9 : g.r+9+length]
	if typ == frameHeaders {
		g.inBlock, g.sid = true, sid
		g.blk = blockCheck{request: sid > g.maxSid, end: flags&flagEndStream != 0}
		if g.blk.request {
			g.maxSid = sid
		}
		if flags&flagPadded != 0 {
			if len(frag) == 0 || int(frag[0]) >= len(frag) {
				g.off = true
				return nil
			}
			frag = frag[1 : len(frag)-int(frag[0])]
		}
		if flags&flagPriority != 0 {
			if len(frag) < 5 {
				g.off = true
				return nil
			}
			frag = frag[5:]
		}
	}
	if _, err := g.dec.Write(frag); err != nil {
		g.off = true
		return nil
	}
	if flags&flagEndHeaders == 0 {
		return nil
	}
	g.inBlock = false
	if err := g.dec.Close(); err != nil {
		g.off = true
		return nil
	}
	b := &g.blk
	switch {
	case b.bad:
	case b.request && b.hasClen && b.end:
		b.bad = b.clenVal != 0 // no DATA at all
	case b.request && b.hasClen:
		g.track(sid, b.clenVal)
	case !b.request && b.end:
		if i := g.find(sid); i >= 0 {
			b.bad = g.bodies[i].left > 0
			g.untrack(sid)
		}
	}
	if b.bad {
		// The block goes on in one more frame, ending with the poison.
		g.buf[g.r+4] &^= flagEndHeaders
		p := g.trlPoison[:]
		if b.request {
			p = g.reqPoison[:]
		}
		p[3], p[4] = frameContinuation, flagEndHeaders
		binary.BigEndian.PutUint32(p[5:9], sid)
		g.extra = p
	}
	return nil
}

// data follows a DATA frame of a tracked body: one that ends it short
// loses its END_STREAM to trailers with an invalid name.
func (g *guard) data(length int, flags byte, sid uint32) error {
	g.ready, g.pass = 9, length
	i := g.find(sid)
	if i < 0 {
		return nil
	}
	n := length
	if flags&flagPadded != 0 {
		if err := g.fill(10); err != nil {
			return err
		}
		n -= 1 + int(g.buf[g.r+9])
		if n < 0 {
			g.off = true // the server refuses the padding
			return nil
		}
	}
	b := &g.bodies[i]
	b.left -= int64(n)
	if flags&flagEndStream == 0 {
		if b.left < 0 {
			g.untrack(sid) // the server resets it: too long
		}
		return nil
	}
	short := b.left > 0
	g.untrack(sid)
	if short {
		g.buf[g.r+4] &^= flagEndStream
		p := g.trlPoison[:]
		p[3], p[4] = frameHeaders, flagEndStream|flagEndHeaders
		binary.BigEndian.PutUint32(p[5:9], sid)
		g.extra = p
	}
	return nil
}

func (g *guard) find(sid uint32) int {
	for i := range g.bodies {
		if g.bodies[i].sid == sid {
			return i
		}
	}
	return -1
}

func (g *guard) track(sid uint32, n int64) {
	if g.bodies == nil {
		g.bodies = make([]h2body, 0, 8)
	}
	if len(g.bodies) == maxBodies {
		g.bodies = append(g.bodies[:0], g.bodies[1:]...)
	}
	g.bodies = append(g.bodies, h2body{sid: sid, left: n})
}

func (g *guard) untrack(sid uint32) {
	if i := g.find(sid); i >= 0 {
		g.bodies = append(g.bodies[:i], g.bodies[i+1:]...)
	}
}

// field checks one decoded header field of the current block.
func (g *guard) field(f hpack.HeaderField) {
	b := &g.blk
	if b.bad {
		return
	}
	if v := f.Value; v != "" && (isWS(v[0]) || isWS(v[len(v)-1])) {
		b.bad = true // §8.2.1
		return
	}
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		b.bad = true // §8.2.2
	case "te":
		b.bad = f.Value != "trailers" // §8.2.2
	case "content-length":
		// RFC 9110 §8.6: digits; repeats only of the same value.
		if b.hasClen {
			b.bad = b.clen != f.Value
			return
		}
		b.clen, b.hasClen = f.Value, true
		b.bad = !isDigits(f.Value) || len(f.Value) > 18
		for i := 0; !b.bad && i < len(f.Value); i++ {
			b.clenVal = b.clenVal*10 + int64(f.Value[i]-'0')
		}
	}
}

// settings rewrites the SETTINGS frame at buf[r:] (length bytes of
// payload, all buffered) if it repeats a setting: only the last value of
// each known setting is kept, in order, up to and including the first
// invalid value, which the server then refuses with its error code.
func (g *guard) settings(length int) {
	g.ready = 9 + length
	p := g.buf[g.r+9 : g.r+9+length]
	var seen uint16
	dup := false
	n := length / 6
	for i := range n {
		id := binary.BigEndian.Uint16(p[i*6:])
		if id >= 16 || seen&(1<<id) != 0 {
			dup = true
			break
		}
		seen |= 1 << id
	}
	if !dup {
		return
	}
	// Cut after the first invalid value.
	for i := range n {
		if !validSetting(binary.BigEndian.Uint16(p[i*6:]), binary.BigEndian.Uint32(p[i*6+2:])) {
			n = i + 1
			break
		}
	}
	// Keep, in order, each known setting at its last occurrence before
	// the cut, writing them backwards to the end of the payload.
	end := len(p)
	seen = 0
	for i := n - 1; i >= 0; i-- {
		id := binary.BigEndian.Uint16(p[i*6:])
		if !knownSetting(id) || seen&(1<<id) != 0 {
			continue
		}
		seen |= 1 << id
		end -= 6
		copy(p[end:end+6], p[i*6:i*6+6])
	}
	kept := len(p) - end
	start := g.r + 9 + end - 9
	copy(g.buf[start:start+9], g.buf[g.r:g.r+9])
	g.buf[start], g.buf[start+1], g.buf[start+2] = byte(kept>>16), byte(kept>>8), byte(kept)
	g.r = start
	g.ready = 9 + kept
}

// knownSetting reports whether the server acts on setting id: RFC 9113
// §6.5.2, RFC 8441 (8) and RFC 9218 (9).
func knownSetting(id uint16) bool {
	return (id >= 1 && id <= 6) || id == 8 || id == 9
}

// validSetting reports whether v is allowed for setting id (§6.5.2).
func validSetting(id uint16, v uint32) bool {
	switch id {
	case 2, 8, 9:
		return v <= 1
	case 4:
		return v <= 1<<31-1
	case 5:
		return v >= 1<<14 && v <= 1<<24-1
	}
	return true
}

// fill reads until buf[r:] holds n bytes, moving or growing buf only
// when they would not fit.
func (g *guard) fill(n int) error {
	if g.w-g.r >= n {
		return nil
	}
	if g.r == g.w {
		g.r, g.w = 0, 0
		if cap(g.buf) > guardBufSize && n <= guardBufSize {
			g.buf = make([]byte, guardBufSize) // let a large frame's buffer go
		}
	}
	if g.r+n > len(g.buf) {
		if n > len(g.buf) {
			nb := make([]byte, n)
			copy(nb, g.buf[g.r:g.w])
			g.buf = nb
		} else {
			copy(g.buf, g.buf[g.r:g.w])
		}
		g.w -= g.r
		g.r = 0
	}
	for g.w-g.r < n {
		m, err := g.Conn.Read(g.buf[g.w:])
		g.w += m
		if err != nil && g.w-g.r < n {
			return err
		}
	}
	return nil
}

func isWS(c byte) bool { return c == ' ' || c == '\t' }
