package proxy

import "net/http"

// dropEmptyH2Body replaces the body of an HTTP/2 request that has none
// with http.NoBody. x/net/http2 hands a request whose HEADERS frame ended
// the stream (or that declared content-length: 0) a live Body with
// ContentLength 0, which net/http's convention, and so the upstream
// client, reads as a body of unknown length: it would go out chunked
// (Transfer-Encoding on a GET), from a writer goroutine, after a liveness
// probe of the pooled connection, and could not be replayed on a stale
// one. The server never looks at Request.Body after the handler, so the
// field is ours to replace.
func dropEmptyH2Body(r *http.Request) {
	if r.ProtoMajor == 2 && r.ContentLength == 0 && r.Body != nil && r.Body != http.NoBody {
		r.Body = http.NoBody
	}
}
