package h1

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// echo describes the request it gets in its body, and shapes its
// response after the query: status=N, n=N extra bytes, cl (set
// Content-Length), flush, trailer, noread, h=K:V (response field).
func echo(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var b strings.Builder
	var body []byte
	var err error
	if !q.Has("noread") {
		body, err = io.ReadAll(r.Body)
	}
	u := r.URL
	fmt.Fprintf(&b, "%s %q %s host=%q\n", r.Method, r.RequestURI, r.Proto, r.Host)
	fmt.Fprintf(&b, "url path=%q raw=%q query=%q force=%v host=%q scheme=%q opaque=%q\n",
		u.Path, u.RawPath, u.RawQuery, u.ForceQuery, u.Host, u.Scheme, u.Opaque)
	fmt.Fprintf(&b, "cl=%d te=%v close=%v\n", r.ContentLength, r.TransferEncoding, r.Close)
	writeSorted(&b, r.Header, "")
	fmt.Fprintf(&b, "body=%q err=%v\n", body, err)
	writeSorted(&b, r.Trailer, "")

	h := w.Header()
	h.Set("X-Echo", "1")
	for _, kv := range q["h"] {
		k, v, _ := strings.Cut(kv, ":")
		h.Add(k, v)
	}
	if q.Has("trailer") {
		h.Set("Trailer", "X-T")
	}
	out := b.String()
	if n, _ := strconv.Atoi(q.Get("n")); n > 0 {
		out += strings.Repeat("x", n)
	}
	if q.Has("cl") {
		h.Set("Content-Length", strconv.Itoa(len(out)))
	}
	status := http.StatusOK
	if s, _ := strconv.Atoi(q.Get("status")); s != 0 {
		status = s
	}
	w.WriteHeader(status)
	if q.Has("flush") {
		io.WriteString(w, out[:len(out)/2])
		w.(http.Flusher).Flush()
		out = out[len(out)/2:]
	}
	io.WriteString(w, out)
	if q.Has("trailer") {
		h.Set("X-T", "tv")
		h.Set(http.TrailerPrefix+"X-P", "pv")
	}
}

func crlf(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

// diffCases are valid requests: both servers must answer them alike.
var diffCases = []struct {
	name    string
	raw     string
	methods []string
}{
	{"get", crlf("GET / HTTP/1.1", "Host: a"), nil},
	{"query", crlf("GET /p/q?x=1&y=%20 HTTP/1.1", "Host: a"), nil},
	{"force query", crlf("GET /p? HTTP/1.1", "Host: a"), nil},
	{"double query", crlf("GET /p?? HTTP/1.1", "Host: a"), nil},
	{"escaped path", crlf("GET /a%2Fb/c%20d?x=1 HTTP/1.1", "Host: a"), nil},
	{"unsafe path bytes", crlf("GET /{x}/\"y\"/<z>|^ HTTP/1.1", "Host: a"), nil},
	{"sub-delims in path", crlf("GET /!'()*/$&+,;=:@~ HTTP/1.1", "Host: a"), nil},
	{"double slash", crlf("GET //x//y HTTP/1.1", "Host: a:8080"), nil},
	{"head", crlf("HEAD /?n=10 HTTP/1.1", "Host: a"), []string{"HEAD"}},
	{"head cl", crlf("HEAD /?cl HTTP/1.1", "Host: a"), []string{"HEAD"}},
	{"post cl", crlf("POST /x HTTP/1.1", "Host: a", "Content-Length: 5") + "hello", nil},
	{"post cl zero", crlf("POST /x HTTP/1.1", "Host: a", "Content-Length: 0"), nil},
	{"post chunked", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", nil},
	{"post chunked trailer", "POST /x HTTP/1.1\r\nHost: a\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 42\r\n\r\n", nil},
	{"http10", crlf("GET /?n=3 HTTP/1.0"), nil},
	{"http10 keep-alive", crlf("GET / HTTP/1.0", "Connection: keep-alive") + crlf("GET /2 HTTP/1.0", "Connection: keep-alive"), []string{"GET", "GET"}},
	{"http10 big", crlf("GET /?n=5000 HTTP/1.0", "Connection: keep-alive"), nil},
	{"204", crlf("GET /?status=204 HTTP/1.1", "Host: a"), nil},
	{"304 cl", crlf("GET /?status=304&cl&h=Content-Type:text/x HTTP/1.1", "Host: a"), nil},
	{"404 cl", crlf("GET /?status=404&cl HTTP/1.1", "Host: a"), nil},
	{"599", crlf("GET /?status=599 HTTP/1.1", "Host: a"), nil},
	{"chunked response", crlf("GET /?n=5000 HTTP/1.1", "Host: a"), nil},
	{"flush", crlf("GET /?flush HTTP/1.1", "Host: a"), nil},
	{"flush cl", crlf("GET /?flush&cl HTTP/1.1", "Host: a"), nil},
	{"trailers", crlf("GET /?trailer HTTP/1.1", "Host: a"), nil},
	{"content type", crlf("GET /?h=Content-Type:application/x HTTP/1.1", "Host: a"), nil},
	{"content encoding", crlf("GET /?h=Content-Encoding:gzip HTTP/1.1", "Host: a"), nil},
	{"response CR in value", crlf("GET /?h=X-A:b%0Dc%0Ad HTTP/1.1", "Host: a"), nil},
	{"response connection close", crlf("GET /?h=Connection:close HTTP/1.1", "Host: a"), nil},
	{"request close", crlf("GET / HTTP/1.1", "Host: a", "Connection: close"), nil},
	{"pipelined", crlf("GET /1 HTTP/1.1", "Host: a") + crlf("POST /2 HTTP/1.1", "Host: a", "Content-Length: 2") + "hi" + crlf("HEAD /3 HTTP/1.1", "Host: a"), []string{"GET", "POST", "HEAD"}},
	{"unread body", crlf("POST /?noread HTTP/1.1", "Host: a", "Content-Length: 10") + "0123456789" + crlf("GET /next HTTP/1.1", "Host: a"), []string{"POST", "GET"}},
	{"unread chunked body", "POST /?noread HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n" + crlf("GET /next HTTP/1.1", "Host: a"), []string{"POST", "GET"}},
	{"expect continue", crlf("PUT /e HTTP/1.1", "Host: a", "Expect: 100-continue", "Content-Length: 3") + "abc", nil},
	{"absolute form", crlf("GET http://example.com:81/x?y=1 HTTP/1.1", "Host: example.com:81"), nil},
	{"options star", crlf("OPTIONS * HTTP/1.1", "Host: a"), nil},
	{"connect", crlf("CONNECT example.com:443 HTTP/1.1", "Host: example.com:443"), nil},
	{"header shapes", crlf("GET / HTTP/1.1", "Host: a", "x-lower: 1", "X-Dup: a", "X-Dup: b", "X-Empty:", "X-Spaces:   v  ", "X-Tab:\tv\t", "X-Obs: caf\xc3\xa9", "accept-encoding: gzip", "sec-websocket-key: k"), nil},
	{"odd method", crlf("PROPFIND /x HTTP/1.1", "Host: a"), nil},
	{"duplicate equal cl", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: 2", "Content-Length: 2") + "ok", nil},
	{"many fields", crlf(append([]string{"GET / HTTP/1.1", "Host: a"}, manyFields(100)...)...), nil},
}

func manyFields(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("X-Field-%d: value-%d", i, i))
	}
	return out
}

// TestDifferential sends the same bytes to this server and to net/http's,
// with the same handler, and compares the responses.
func TestDifferential(t *testing.T) {
	ours := serveH1(t, &Server{Handler: http.HandlerFunc(echo)})
	std := serveStd(t, http.HandlerFunc(echo))
	for _, tc := range diffCases {
		t.Run(tc.name, func(t *testing.T) {
			methods := tc.methods
			if methods == nil {
				methods = []string{strings.Fields(strings.TrimLeft(tc.raw, "\r\n"))[0]}
			}
			a := exchange(t, ours, tc.raw, methods...)
			b := exchange(t, std, tc.raw, methods...)
			for i := range a {
				da, db := describe(a[i]), describe(b[i])
				if da != db {
					t.Errorf("response %d differs\n--- h1:\n%s\n--- net/http:\n%s", i, da, db)
				}
			}
		})
	}
}
