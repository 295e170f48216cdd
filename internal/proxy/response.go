package proxy

import (
	"causeway.dev/causeway/internal/upstream"
	"io"
	"net/http"
	"strings"
	"sync"
)

// bufPool holds the 32 KiB buffers that stream response bodies.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyResponse writes the upstream response downstream: headers without
// hop-by-hop fields and with the response modifiers applied, the body
// streamed (flushed write by write when its length is unknown or it is an
// event stream), then the trailers.
func (ls *listener) copyResponse(w http.ResponseWriter, resp *http.Response, x *exchange) {
	x.endpoint = upstream.EndpointOf(resp)
	removeHopHeaders(resp.Header, false)
	delete(resp.Header, "Trailer") // announced again below, from resp.Trailer
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	x.corsHeaders(h)
	x.entry.respHeaders.Apply(h)
	x.be.respHeaders.Apply(h)
	if len(resp.Trailer) > 0 {
		keys := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	w.WriteHeader(resp.StatusCode)
	x.status = resp.StatusCode

	flush := resp.ContentLength < 0 || isEventStream(resp.Header)
	n, rerr, werr := streamBody(w, resp.Body, flush)
	x.bytesOut += n
	_ = resp.Body.Close()
	switch {
	case werr != nil:
		// The client went away; closing the body told the upstream.
		x.flags = "DC"
		return
	case rerr != nil:
		// The response is cut: make the client see it (connection reset
		// on HTTP/1.1, stream reset on HTTP/2) rather than a short body
		// that looks complete.
		x.flags = "UR"
		ls.p.opts.Logger.Debug("upstream body", "route", x.entry.name, "err", rerr)
		ls.p.finish(x)
		panic(http.ErrAbortHandler)
	}
	for k, v := range resp.Trailer {
		h[http.TrailerPrefix+k] = v
	}
}

// streamBody copies body to w with a pooled buffer; it returns the bytes
// written and the read or the write error that stopped it (io.EOF is no
// error).
func streamBody(w http.ResponseWriter, body io.Reader, flush bool) (n int64, rerr, werr error) {
	fl, _ := w.(http.Flusher)
	if fl == nil {
		flush = false
	}
	bp := bufPool.Get().(*[]byte)
	buf := *bp
	for {
		nr, err := body.Read(buf)
		if nr > 0 {
			nw, err := w.Write(buf[:nr])
			n += int64(nw)
			if err != nil {
				werr = err
				break
			}
			if flush {
				fl.Flush()
			}
		}
		if err != nil {
			if err != io.EOF {
				rerr = err
			}
			break
		}
	}
	bufPool.Put(bp)
	return n, rerr, werr
}

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && strings.HasPrefix(ct[0], "text/event-stream")
}
