package proxy

import (
	"net/http"
	"strconv"
	"time"
)

// gRPC awareness of the request path. A gRPC call is an HTTP/2 POST whose
// outcome is the grpc-status trailer, not the HTTP status: a client that
// gets "503 text/plain" reports a protocol error, not UNAVAILABLE. So the
// answers the proxy gives itself to a gRPC request (no route, no healthy
// upstream, timeout, invalid backend) are trailers-only responses: HTTP 200,
// content-type application/grpc, grpc-status and grpc-message in the
// headers and no body. And the grpc-timeout a client sends bounds the
// upstream exchange like a route timeout does.

// gRPC status codes (google.rpc.Code) the proxy answers with.
const (
	grpcUnknown           = 2
	grpcDeadlineExceeded  = 4
	grpcPermissionDenied  = 7
	grpcResourceExhausted = 8
	grpcUnimplemented     = 12
	grpcInternal          = 13
	grpcUnavailable       = 14
	grpcUnauthenticated   = 16
)

// grpcContentType is shared by every gRPC local reply; net/http only reads it.
var grpcContentType = []string{"application/grpc"}

// grpcStatusValues holds the grpc-status header value of each code, shared
// read-only so that a reply allocates nothing for it.
var grpcStatusValues = func() (v [17][]string) {
	for i := range v {
		v[i] = []string{strconv.Itoa(i)}
	}
	return v
}()

// isGRPC tells whether r is a gRPC call: content-type application/grpc,
// alone or followed by "+codec" or parameters.
func isGRPC(r *http.Request) bool {
	ct := r.Header["Content-Type"]
	if len(ct) == 0 {
		return false
	}
	const p = "application/grpc"
	s := ct[0]
	if len(s) < len(p) || s[:len(p)] != p {
		return false
	}
	return len(s) == len(p) || s[len(p)] == '+' || s[len(p)] == ';'
}

// grpcCode is the gRPC status of a reply the proxy gives with HTTP status
// code. It follows gRPC's HTTP-to-gRPC mapping (400 INTERNAL, 401
// UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429, 502, 503
// and 504 UNAVAILABLE, anything else UNKNOWN) with the exceptions a proxy
// knows better, as Envoy makes them: a timeout (504 here) is
// DEADLINE_EXCEEDED, an invalid backend (the only 500 the proxy answers
// itself) is UNAVAILABLE as Gateway API's GRPCRoute requires, and a body
// over the limit (413) is RESOURCE_EXHAUSTED.
func grpcCode(code int) int {
	switch code {
	case http.StatusBadRequest:
		return grpcInternal
	case http.StatusUnauthorized:
		return grpcUnauthenticated
	case http.StatusForbidden:
		return grpcPermissionDenied
	case http.StatusNotFound:
		return grpcUnimplemented
	case http.StatusRequestEntityTooLarge:
		return grpcResourceExhausted
	case http.StatusGatewayTimeout:
		return grpcDeadlineExceeded
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable:
		return grpcUnavailable
	}
	return grpcUnknown
}

// grpcReply answers a gRPC request from the proxy with a trailers-only
// response carrying the status that corresponds to code. msg must be
// printable ASCII without '%' (grpc-message is percent-encoded otherwise);
// the proxy's own messages are. The exchange records HTTP 200, which is
// what went on the wire, with the flag saying why.
func (x *exchange) grpcReply(w http.ResponseWriter, code int, flag, msg string) {
	x.status, x.flags = http.StatusOK, flag
	h := w.Header()
	h["Content-Type"] = grpcContentType
	h["Grpc-Status"] = grpcStatusValues[grpcCode(code)]
	h["Grpc-Message"] = []string{msg}
	w.WriteHeader(http.StatusOK)
}

// grpcTimeout returns the smaller of limit (0: none) and the request's
// grpc-timeout header, which is 1 to 8 digits and a unit: H, M, S, m
// (milliseconds), u (microseconds) or n (nanoseconds). A malformed header
// is ignored. It does not allocate.
func grpcTimeout(h http.Header, limit time.Duration) time.Duration {
	v := h["Grpc-Timeout"]
	if len(v) == 0 {
		return limit
	}
	d, ok := parseGRPCTimeout(v[0])
	if !ok || limit > 0 && limit <= d {
		return limit
	}
	return d
}

// parseGRPCTimeout parses a grpc-timeout value; see grpcTimeout.
func parseGRPCTimeout(s string) (time.Duration, bool) {
	if len(s) < 2 || len(s) > 9 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s)-1; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	// 8 digits of hours (about 11,000 years) overflow time.Duration, which
	// holds about 292 years: saturate.
	if n > int64(1<<63-1)/int64(unit) {
		return time.Duration(1<<63 - 1), true
	}
	if n == 0 {
		return 1, true // already expired; 0 would mean no timeout
	}
	return time.Duration(n) * unit, true
}
