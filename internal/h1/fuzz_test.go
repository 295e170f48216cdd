package h1

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// memConn is an in-memory net.Conn: reads return in, then EOF; writes
// are collected. It lets the fuzzer drive a whole connection quickly.
type memConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (m *memConn) Read(p []byte) (int, error) {
	// Small reads exercise the buffer refills.
	if len(p) > 7 {
		p = p[:7]
	}
	return m.in.Read(p)
}
func (m *memConn) Write(p []byte) (int, error)      { return m.out.Write(p) }
func (m *memConn) Close() error                     { return nil }
func (m *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (m *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234} }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

var fuzzServer = &Server{
	MaxHeaderBytes:      2 << 10,
	MaxRequestLineBytes: 512,
	Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if n > 1<<20 {
			panic("body larger than the input")
		}
		w.Header().Set("X-Path", r.URL.Path)
		io.WriteString(w, r.Method)
	}),
}

// FuzzParseRequest feeds random bytes to a connection: the server must
// not panic or hang, must keep its buffer within the header limits, and
// must only ever write HTTP/1.x responses.
func FuzzParseRequest(f *testing.F) {
	for _, tc := range diffCases {
		f.Add([]byte(tc.raw))
	}
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"))
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		mc := &memConn{in: bytes.NewReader(data)}
		c := newConn(fuzzServer, mc)
		fuzzServer.track(c, true)
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.serve()
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("connection hangs on %q\n%s", data, buf[:runtime.Stack(buf, true)])
		}
		if limit := max(bufSize, fuzzServer.MaxHeaderBytes+fuzzServer.MaxRequestLineBytes); len(c.buf) > limit {
			t.Fatalf("read buffer grew to %d bytes", len(c.buf))
		}
		if out := mc.out.Bytes(); len(out) > 0 && !bytes.HasPrefix(out, []byte("HTTP/1.")) {
			t.Fatalf("output is not a response: %.60q", out)
		}
	})
}

// FuzzDifferential builds requests from fuzzed parts: whenever this
// server accepts one, net/http must accept it too and hand the handler
// the same request, answered with the same response.
func FuzzDifferential(f *testing.F) {
	f.Add("GET", "/a?b=c", "X-Y", "z", "", false)
	f.Add("POST", "/p%20q", "content-type", "text/plain", "hello", false)
	f.Add("PUT", "/x", "Trailer", "X-T", "abc", true)
	f.Add("HEAD", "/?n=10", "Accept", "*/*", "", false)
	f.Add("OPTIONS", "*", "X", "", "", false)
	f.Add("GET", "http://h/x", "Connection", "close", "", false)
	ours := serveH1(f, &Server{Handler: http.HandlerFunc(echo)})
	std := serveStd(f, http.HandlerFunc(echo))
	f.Fuzz(func(t *testing.T, method, target, name, value, body string, chunked bool) {
		var b strings.Builder
		b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: a\r\n")
		b.WriteString(name + ": " + value + "\r\n")
		if chunked {
			b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
			if body != "" {
				b.WriteString(strconv.FormatInt(int64(len(body)), 16) + "\r\n" + body + "\r\n")
			}
			b.WriteString("0\r\n\r\n")
		} else {
			b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
		}
		raw := b.String()
		a := exchangeOrNil(ours, raw, method)
		if a == nil || a.Header.Get("X-Echo") != "1" {
			return // refused (or answered by the server itself): it may be stricter
		}
		bb := exchangeOrNil(std, raw, method)
		if bb == nil {
			t.Fatalf("net/http failed a request this server accepted: %q", raw)
		}
		if da, db := describe(a), describe(bb); da != db {
			t.Fatalf("request %q\n--- h1:\n%s\n--- net/http:\n%s", raw, da, db)
		}
	})
}

// exchangeOrNil is exchange without failing the test: nil when the
// server closed without a response.
func exchangeOrNil(addr, raw, method string) *http.Response {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go io.WriteString(c, raw)
	resp, err := readResponse(bufio.NewReader(c), method)
	if err != nil {
		return nil
	}
	return resp
}
