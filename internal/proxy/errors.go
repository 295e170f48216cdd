package proxy

import (
	"io"
	"net/http"
	"strings"
)

// textPlain is shared by every local reply; net/http only reads it.
var textPlain = []string{"text/plain; charset=utf-8"}

// localReply answers the request from the proxy itself with a short
// plain-text body, and records the status and response flag (as Envoy
// names them: NR no route, UH no healthy upstream, UF connect failure,
// UT upstream timeout, UC other upstream failure) for logs.
//
// A gRPC request gets the gRPC status for code instead (grpcReply).
func (x *exchange) localReply(w http.ResponseWriter, code int, flag, body string) {
	if x.grpc {
		x.grpcReply(w, code, flag, strings.TrimSuffix(body, "\n"))
		return
	}
	x.status, x.flags = code, flag
	x.corsHeaders(w.Header())
	w.Header()["Content-Type"] = textPlain
	w.WriteHeader(code)
	n, _ := io.WriteString(w, body)
	x.bytesOut += int64(n)
}
