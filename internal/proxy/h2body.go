package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
)

// dropEmptyH2Body gives an HTTP/2 or HTTP/3 request that has no body
// http.NoBody, so that the upstream client sends it without one. Both
// servers hand the handler a live Body when the request has none, which
// net/http's convention, and so the upstream client, reads as a body of
// unknown length: it would go out chunked (Transfer-Encoding on a GET),
// from a writer goroutine, after a liveness probe of the pooled
// connection, and could not be replayed on a stale one. Neither server
// looks at Request.Body after the handler, so the field is ours to
// replace.
//
// x/net/http2 says ContentLength 0 when the HEADERS frame ended the
// stream. quic-go says -1 (unknown) for any request without
// content-length: for the methods that seldom carry a body, one read
// tells (a client ends the request stream after its headers, so it
// returns at once); other methods keep their streaming body untouched.
func dropEmptyH2Body(r *http.Request) {
	if r.ProtoMajor < 2 || r.Body == nil || r.Body == http.NoBody {
		return
	}
	switch {
	case r.ContentLength == 0:
		r.Body = http.NoBody
	case r.ProtoMajor == 3 && r.ContentLength < 0 && seldomBody(r.Method):
		var one [1]byte
		n, err := r.Body.Read(one[:])
		if n == 0 && errors.Is(err, io.EOF) {
			_ = r.Body.Close()
			r.Body, r.ContentLength = http.NoBody, 0
			return
		}
		r.Body = &prefixBody{Reader: io.MultiReader(bytes.NewReader(one[:n]), errAfter(r.Body, err)), c: r.Body}
	}
}

// seldomBody: methods whose requests carry a body only by exception.
func seldomBody(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodDelete, http.MethodTrace:
		return true
	}
	return false
}

// prefixBody is a request body whose first bytes were already read.
type prefixBody struct {
	io.Reader
	c io.Closer
}

func (b *prefixBody) Close() error { return b.c.Close() }

// errAfter reads r, or returns err at once when the probe read failed.
func errAfter(r io.Reader, err error) io.Reader {
	if err != nil {
		return &errReader{err: err}
	}
	return r
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }
