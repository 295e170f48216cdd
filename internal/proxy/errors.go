package proxy

import (
	"io"
	"net/http"
)

// textPlain is shared by every local reply; net/http only reads it.
var textPlain = []string{"text/plain; charset=utf-8"}

// localReply answers the request from the proxy itself with a short
// plain-text body, and records the status and response flag (as Envoy
// names them: NR no route, UH no healthy upstream, UF connect failure,
// UT upstream timeout, UC other upstream failure) for logs.
func (x *exchange) localReply(w http.ResponseWriter, code int, flag, body string) {
	x.status, x.flags = code, flag
	w.Header()["Content-Type"] = textPlain
	w.WriteHeader(code)
	n, _ := io.WriteString(w, body)
	x.bytesOut += int64(n)
}
