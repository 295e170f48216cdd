package h1

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestInvalid sends malformed and smuggling-prone requests: each must get
// the status shown, without reaching the handler, and the connection must
// be closed.
func TestInvalid(t *testing.T) {
	var called atomic.Int32
	s := &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			called.Add(1)
			io.Copy(io.Discard, r.Body)
		}),
		MaxHeaderBytes:      4 << 10,
		MaxRequestLineBytes: 1 << 10,
	}
	addr := serveH1(t, s)
	long := strings.Repeat("a", 2000)
	cases := []struct {
		name   string
		raw    string
		status int
	}{
		{"bare LF request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
		{"bare LF header", "GET / HTTP/1.1\r\nHost: a\n\n", 400},
		{"bare CR in value", crlf("GET / HTTP/1.1", "Host: a", "X: a\rb"), 400},
		{"NUL in value", crlf("GET / HTTP/1.1", "Host: a", "X: a\x00b"), 400},
		{"double space", crlf("GET  / HTTP/1.1", "Host: a"), 400},
		{"lowercase version", crlf("GET / http/1.1", "Host: a"), 400},
		{"HTTP/1.2", crlf("GET / HTTP/1.2", "Host: a"), 505},
		{"HTTP/2.0 request", crlf("GET / HTTP/2.0", "Host: a"), 505},
		{"HTTP/0.9", "GET /\r\n\r\n", 400},
		{"bad method", crlf("G(T / HTTP/1.1", "Host: a"), 400},
		{"space in target", crlf("GET /a b HTTP/1.1", "Host: a"), 400},
		{"fragment", crlf("GET /a#b HTTP/1.1", "Host: a"), 400},
		{"non-ascii target", crlf("GET /caf\xc3\xa9 HTTP/1.1", "Host: a"), 400},
		{"relative target", crlf("GET a/b HTTP/1.1", "Host: a"), 400},
		{"star without OPTIONS", crlf("GET * HTTP/1.1", "Host: a"), 400},
		{"CONNECT origin form", crlf("CONNECT /x HTTP/1.1", "Host: a"), 400},
		{"CONNECT no port", crlf("CONNECT example.com HTTP/1.1", "Host: a"), 400},
		{"absolute ftp", crlf("GET ftp://a/x HTTP/1.1", "Host: a"), 400},
		{"absolute userinfo", crlf("GET http://u@a/x HTTP/1.1", "Host: a"), 400},
		{"request line too long", crlf("GET /"+long+" HTTP/1.1", "Host: a"), 414},
		{"header too large", crlf("GET / HTTP/1.1", "Host: a", "X: "+strings.Repeat("b", 5000)), 431},
		{"many headers too large", crlf(append([]string{"GET / HTTP/1.1", "Host: a"}, manyFields(300)...)...), 431},
		{"obs-fold", crlf("GET / HTTP/1.1", "Host: a", "X: a", " b"), 400},
		{"space before colon", crlf("GET / HTTP/1.1", "Host: a", "X : a"), 400},
		{"empty name", crlf("GET / HTTP/1.1", "Host: a", ": a"), 400},
		{"no colon", crlf("GET / HTTP/1.1", "Host: a", "X"), 400},
		{"bad name char", crlf("GET / HTTP/1.1", "Host: a", "X(y): a"), 400},
		{"missing host", crlf("GET / HTTP/1.1"), 400},
		{"two hosts", crlf("GET / HTTP/1.1", "Host: a", "Host: b"), 400},
		{"bad host", crlf("GET / HTTP/1.1", "Host: a b"), 400},
		{"host with slash", crlf("GET / HTTP/1.1", "Host: a/b"), 400},
		{"cl sign", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: +5") + "hello", 400},
		{"cl negative", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: -1"), 400},
		{"cl list", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: 5, 5") + "hello", 400},
		{"cl hex", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: 0x5") + "hello", 400},
		{"cl differing", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: 5", "Content-Length: 6") + "hello!", 400},
		{"cl empty", crlf("POST / HTTP/1.1", "Host: a", "Content-Length:"), 400},
		{"cl huge", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: 99999999999999999999"), 400},
		{"te and cl", crlf("POST / HTTP/1.1", "Host: a", "Content-Length: 3", "Transfer-Encoding: chunked") + "0\r\n\r\n", 400},
		{"cl and te", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Content-Length: 3") + "0\r\n\r\n", 400},
		{"te gzip", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: gzip, chunked") + "0\r\n\r\n", 501},
		{"te identity", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: identity"), 501},
		{"te chunked twice", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked") + "0\r\n\r\n", 501},
		{"te chunked list", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked, chunked") + "0\r\n\r\n", 501},
		{"te xchunked", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: xchunked") + "0\r\n\r\n", 501},
		{"te in HTTP/1.0", crlf("POST / HTTP/1.0", "Transfer-Encoding: chunked") + "0\r\n\r\n", 400},
		{"te vertical tab", crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding:\x0bchunked") + "0\r\n\r\n", 400},
		{"bad trailer declaration", crlf("POST / HTTP/1.1", "Host: a", "Trailer: Content-Length", "Transfer-Encoding: chunked") + "0\r\n\r\n", 400},
		{"expect other", crlf("POST / HTTP/1.1", "Host: a", "Expect: 200-ok", "Content-Length: 1") + "x", 417},
		{"h2 preface without h2c", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := called.Load()
			c := dial(t, addr)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, tc.raw)
			br := bufio.NewReader(c)
			if tc.status != 0 {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("reading response: %v", err)
				}
				if resp.StatusCode != tc.status {
					t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
				}
				if !resp.Close {
					t.Error("response does not say Connection: close")
				}
				io.Copy(io.Discard, resp.Body)
			}
			waitEOF(t, c)
			if called.Load() != before {
				t.Error("handler was called")
			}
		})
	}
}

// TestInvalidChunked covers chunked bodies that break framing: the
// handler sees a read error and the connection is closed (the next
// request on it must not be served).
func TestInvalidChunked(t *testing.T) {
	var served atomic.Int32
	errs := make(chan error, 1)
	s := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/smuggled" {
			served.Add(1)
			return
		}
		_, err := io.Copy(io.Discard, r.Body)
		errs <- err
	})}
	addr := serveH1(t, s)
	long := strings.Repeat("a", 5000)
	cases := map[string]string{
		"no hex":              "x\r\nabc\r\n0\r\n\r\n",
		"size overflow":       "10000000000000000\r\n",
		"missing crlf":        "3\r\nabcX\r\n0\r\n\r\n",
		"bare LF size":        "3\nabc\r\n0\r\n\r\n",
		"bare LF after data":  "3\r\nabc\n0\r\n\r\n",
		"ext too long":        "3;" + long + "\r\nabc\r\n0\r\n\r\n",
		"ext with ctl":        "3;a=\x01\r\nabc\r\n0\r\n\r\n",
		"space inside size":   "1 0\r\n",
		"negative":            "-3\r\nabc\r\n0\r\n\r\n",
		"bad trailer":         "3\r\nabc\r\n0\r\nX y: z\r\n\r\n",
		"trailer fold":        "3\r\nabc\r\n0\r\nX: y\r\n z\r\n\r\n",
		"trailer too large":   "3\r\nabc\r\n0\r\nX: " + strings.Repeat("v", 70<<10) + "\r\n\r\n",
		"truncated then next": "5\r\nab",
	}
	for name, bodyRaw := range cases {
		t.Run(name, func(t *testing.T) {
			c := dial(t, addr)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			raw := crlf("POST / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + bodyRaw
			if name == "truncated then next" {
				go func() {
					io.WriteString(c, raw)
					c.(interface{ CloseWrite() error }).CloseWrite()
				}()
			} else {
				io.WriteString(c, raw+crlf("GET /smuggled HTTP/1.1", "Host: a"))
			}
			select {
			case err := <-errs:
				if err == nil {
					t.Fatal("body read without error")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("handler did not finish")
			}
			waitEOF(t, c)
			if served.Load() != 0 {
				t.Fatal("request after a broken body was served")
			}
		})
	}
}
