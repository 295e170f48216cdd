package h1

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// pendMax is how much body is held back before the header is sent, so
// that a small response finished by the handler gets a Content-Length
// instead of chunking (as net/http does, with the same size).
const pendMax = 2048

// response is the http.ResponseWriter of one request; a connection
// reuses it. Its header framing follows net/http's server: the header
// fields are those set when WriteHeader was called; Content-Length is
// added when the handler finishes before pendMax bytes; otherwise HTTP/1.1
// bodies of unknown length are chunked and HTTP/1.0 ones end with the
// connection; Content-Type is sniffed when not set; Date is added.
type response struct {
	c      *conn
	req    *http.Request
	header http.Header
	f      framing

	status        int
	wroteHeader   bool // the final status is chosen
	committed     bool // the header is in bw, framing decided
	chunking      bool
	handlerDone   bool
	isHEAD        bool
	is11          bool
	bodyOK        bool  // the status allows a body
	contentLength int64 // -1: unknown
	written       int64
	closeAfter    bool

	// Noted at WriteHeader, for the commit.
	te             string
	haveType       bool
	hasCE          bool
	hasDate        bool
	prefixTrailers bool
	trailers       []string // declared trailer names
	pend           []byte   // body held back before the commit
}

var (
	_ http.ResponseWriter = (*response)(nil)
	_ http.Flusher        = (*response)(nil)
	_ http.Hijacker       = (*response)(nil)
)

func (w *response) reset(c *conn, r *http.Request, f framing) {
	h := w.header
	if h == nil {
		h = http.Header{}
	}
	*w = response{
		c:             c,
		req:           r,
		header:        h,
		f:             f,
		isHEAD:        r.Method == http.MethodHead,
		is11:          r.ProtoMinor == 1,
		contentLength: -1,
		trailers:      w.trailers[:0],
		pend:          w.pend[:0],
	}
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	c := w.c
	if c.hijacked {
		c.s.logDebug("h1: WriteHeader on hijacked connection")
		return
	}
	if w.wroteHeader {
		c.s.logDebug("h1: superfluous WriteHeader call", "code", code)
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 101 || code > 199 {
		c.endContinue()
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.informational(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	w.bodyOK = bodyAllowed(code)
	h := w.header

	if cl := first(h["Content-Length"]); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			w.contentLength = n
		} else {
			c.s.logDebug("h1: invalid Content-Length", "value", cl)
			delete(h, "Content-Length")
		}
	}
	w.te = first(h["Transfer-Encoding"])
	_, w.haveType = h["Content-Type"]
	w.hasCE = first(h["Content-Encoding"]) != ""
	_, w.hasDate = h["Date"]
	dropCL := !w.bodyOK
	if w.contentLength >= 0 && w.te != "" && w.te != "identity" {
		c.s.logDebug("h1: both Transfer-Encoding and Content-Length set")
		dropCL = true
		w.contentLength = -1
	}
	for _, v := range h["Trailer"] {
		forTokens(v, w.declareTrailer)
	}

	bw := c.bw
	bw.Write(appendStatusLine(bw.AvailableBuffer(), w.is11, code))
	for k, vv := range h {
		switch k {
		case "Connection", "Transfer-Encoding":
			continue // decided at the commit
		case "Content-Length":
			if dropCL {
				continue
			}
		case "Content-Type":
			if code == http.StatusNotModified {
				continue
			}
		}
		if strings.HasPrefix(k, http.TrailerPrefix) {
			w.prefixTrailers = true
			continue
		}
		writeField(bw, k, vv)
	}
	if !w.bodyOK || w.contentLength >= 0 && !w.needSniff() {
		w.commit(nil)
	}
}

func (w *response) declareTrailer(k string) {
	k = http.CanonicalHeaderKey(k)
	if httpguts.ValidTrailerHeader(k) {
		w.trailers = append(w.trailers, k)
	}
}

func (w *response) needSniff() bool {
	return w.bodyOK && !w.haveType && !w.hasCE && w.te == ""
}

// informational writes a 1xx response other than 101 at once.
func (w *response) informational(code int) {
	bw := w.c.bw
	bw.Write(appendStatusLine(bw.AvailableBuffer(), w.is11, code))
	for k, vv := range w.header {
		if k != "Content-Length" && k != "Transfer-Encoding" {
			writeField(bw, k, vv)
		}
	}
	bw.WriteString("\r\n")
	bw.Flush()
}

// commit completes the header: framing, connection, Content-Type, Date.
// sniff is the start of the body, for Content-Type.
func (w *response) commit(sniff []byte) {
	w.committed = true
	c := w.c
	h := w.header
	b := c.bw.AvailableBuffer()
	trailers := w.prefixTrailers || len(w.trailers) > 0
	hasCL := w.contentLength >= 0
	if w.handlerDone && !trailers && w.te == "" && w.bodyOK && !hasCL && (!w.isHEAD || len(w.pend) > 0) {
		w.contentLength = int64(len(w.pend))
		hasCL = true
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, w.contentLength, 10)
		b = append(b, "\r\n"...)
	}
	conn := h["Connection"]
	keepAliveHdr := false
	if w.f.keepAlive10 && (w.isHEAD || hasCL || !w.bodyOK) {
		keepAliveHdr = conn == nil
	} else if !w.is11 || w.f.close {
		w.closeAfter = true
	}
	if first(conn) == "close" || c.s.shutting.Load() {
		w.closeAfter = true
	}
	if bd := c.body; bd != nil && !w.closeAfter {
		switch {
		case c.contWanted && !bd.done.Load():
			w.closeAfter = true
		case !bd.chunked && !bd.done.Load() && bd.left.Load() >= maxDrain:
			w.closeAfter = true
		}
	}
	if w.needSniff() && len(sniff) > 0 {
		b = append(b, "Content-Type: "...)
		b = append(b, http.DetectContentType(sniff)...)
		b = append(b, "\r\n"...)
	}
	if !w.hasDate {
		b = appendDate(b, time.Now())
	}
	switch {
	case w.isHEAD || !w.bodyOK || w.status == http.StatusNoContent || hasCL:
	case w.is11:
		if w.te == "identity" {
			w.closeAfter = true
		} else {
			w.chunking = true
			if w.te != "" && w.te != "chunked" {
				b = append(b, "Transfer-Encoding: "...)
				b = append(b, w.te...)
				b = append(b, "\r\n"...)
			}
			b = append(b, "Transfer-Encoding: chunked\r\n"...)
		}
	default:
		w.closeAfter = true
	}
	c.bw.Write(b)
	switch {
	case w.closeAfter && (c.s.shutting.Load() || !httpguts.HeaderValuesContainsToken(conn, "close")) && !w.protocolSwitch():
		if w.is11 {
			c.bw.WriteString("Connection: close\r\n")
		}
	case keepAliveHdr:
		c.bw.WriteString("Connection: keep-alive\r\n")
	default:
		writeField(c.bw, "Connection", conn)
	}
	c.bw.WriteString("\r\n")
}

func (w *response) protocolSwitch() bool {
	return w.status == http.StatusSwitchingProtocols && first(w.header["Upgrade"]) != "" &&
		httpguts.HeaderValuesContainsToken(w.header["Connection"], "Upgrade")
}

func (w *response) Write(p []byte) (int, error) {
	if w.c.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyOK {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.contentLength >= 0 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if !w.committed {
		if len(w.pend)+len(p) <= pendMax {
			w.pend = append(w.pend, p...)
			return len(p), nil
		}
		w.flushPend(p)
	}
	return w.writeBody(p)
}

// WriteString avoids a copy for io.WriteString callers.
func (w *response) WriteString(s string) (int, error) {
	if !w.committed && w.wroteHeader && len(w.pend)+len(s) <= pendMax && w.bodyOK &&
		(w.contentLength < 0 || w.written+int64(len(s)) <= w.contentLength) && !w.c.hijacked {
		w.written += int64(len(s))
		w.pend = append(w.pend, s...)
		return len(s), nil
	}
	return w.Write([]byte(s))
}

// flushPend commits the header and writes the held-back body; next is
// the write that did not fit, for sniffing when nothing is held back.
func (w *response) flushPend(next []byte) {
	sniff := w.pend
	if len(sniff) == 0 {
		sniff = next
	}
	w.commit(sniff)
	if len(w.pend) > 0 {
		w.writeBody(w.pend)
		w.pend = w.pend[:0]
	}
}

func (w *response) writeBody(p []byte) (int, error) {
	if w.isHEAD || len(p) == 0 {
		return len(p), nil
	}
	bw := w.c.bw
	if w.chunking {
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		if _, err := bw.WriteString("\r\n"); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return bw.Write(p)
}

func (w *response) Flush() { _ = w.FlushError() }

// FlushError sends what is buffered; http.ResponseController uses it.
func (w *response) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.flushPend(nil)
	}
	return w.c.bw.Flush()
}

// finish ends the response after the handler returned.
func (w *response) finish() {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.flushPend(nil)
	}
	bw := w.c.bw
	if w.chunking {
		bw.WriteString("0\r\n")
		for k, vv := range w.header {
			if tk, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
				writeField(bw, tk, vv)
			}
		}
		for _, k := range w.trailers {
			writeField(bw, k, w.header[k])
		}
		bw.WriteString("\r\n")
	}
	bw.Flush()
}

// reusable tells whether the connection can carry another request.
func (w *response) reusable() bool {
	if w.closeAfter || w.c.werr != nil {
		return false
	}
	return w.isHEAD || w.contentLength < 0 || !w.bodyOK || w.written == w.contentLength
}

// Hijack hands the connection over, with what has been read but not
// consumed buffered in the returned reader.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.wroteHeader && !w.committed {
		w.flushPend(nil)
	}
	if err := c.bw.Flush(); err != nil {
		return nil, nil, err
	}
	if c.body != nil {
		c.body.close()
	}
	return c.hijack()
}

// SetReadDeadline and SetWriteDeadline serve http.ResponseController.
func (w *response) SetReadDeadline(t time.Time) error {
	w.c.rdl = t
	return w.c.nc.SetReadDeadline(t)
}

func (w *response) SetWriteDeadline(t time.Time) error { return w.c.nc.SetWriteDeadline(t) }

// EnableFullDuplex serves http.ResponseController: the request body can
// always be read while the response is written.
func (w *response) EnableFullDuplex() error { return nil }

func bodyAllowed(code int) bool {
	return !(code >= 100 && code <= 199 || code == http.StatusNoContent || code == http.StatusNotModified)
}

func first(vv []string) string {
	if len(vv) == 0 {
		return ""
	}
	return vv[0]
}

func appendStatusLine(b []byte, is11 bool, code int) []byte {
	if is11 {
		b = append(b, "HTTP/1.1 "...)
	} else {
		b = append(b, "HTTP/1.0 "...)
	}
	if text := http.StatusText(code); text != "" {
		b = strconv.AppendInt(b, int64(code), 10)
		b = append(b, ' ')
		b = append(b, text...)
	} else {
		b = fmt.Appendf(b, "%03d status code %d", code, code)
	}
	return append(b, "\r\n"...)
}

// writeField writes one header field per value. Invalid names are
// skipped; CR and LF in values become spaces, so that a handler cannot
// split the response.
func writeField(bw *bufio.Writer, k string, vv []string) {
	if !isToken(k) {
		return
	}
	for _, v := range vv {
		bw.WriteString(k)
		bw.WriteString(": ")
		if !cleanValue(v) {
			v = strings.TrimSpace(strings.Map(func(r rune) rune {
				if r == '\r' || r == '\n' {
					return ' '
				}
				return r
			}, v))
		}
		bw.WriteString(v)
		bw.WriteString("\r\n")
	}
}

// cleanValue tells whether v can be written as it is: no CR or LF, no
// space at either end.
func cleanValue(v string) bool {
	if v != "" && (v[0] == ' ' || v[0] == '\t' || v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == '\n' {
			return false
		}
	}
	return true
}
