package h1

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawH2 is an HTTP/2 client that writes whatever frames it is told to.
type rawH2 struct {
	t   *testing.T
	c   net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

// dialH2 connects to addr (over TLS with ALPN h2 if useTLS) and sends the
// preface and an empty SETTINGS frame.
func dialH2(t *testing.T, addr string, useTLS bool) *rawH2 {
	t.Helper()
	var c net.Conn
	var err error
	if useTLS {
		c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := &rawH2{t: t, c: c, fr: http2.NewFramer(c, c)}
	r.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	r.fr.AllowIllegalWrites = true
	r.enc = hpack.NewEncoder(&r.buf)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := r.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return r
}

// headers sends a header block on stream 1 made of kv pairs, in order.
func (r *rawH2) headers(end bool, kv ...string) {
	r.buf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		_ = r.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.buf.Bytes(), EndStream: end, EndHeaders: true}); err != nil {
		r.t.Fatal(err)
	}
}

// get is a valid GET request's header block followed by extra fields.
func get(extra ...string) []string {
	return append([]string{":method", "GET", ":scheme", "http", ":path", "/", ":authority", "a.test"}, extra...)
}

// outcome is what the server did about stream 1.
type outcome struct {
	kind string // "rst", "goaway", "close" or "status"
	code http2.ErrCode
	val  string // the :status of a response
	data []int  // lengths of the DATA frames of the response
}

// result reads until the server resets stream 1, answers it to its end,
// sends GOAWAY or closes, acknowledging its SETTINGS on the way.
func (r *rawH2) result() outcome {
	var o outcome
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			if o.kind == "status" {
				return o
			}
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
				return outcome{kind: "close"}
			}
			r.t.Fatalf("reading: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = r.fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				return outcome{kind: "rst", code: f.ErrCode}
			}
		case *http2.GoAwayFrame:
			return outcome{kind: "goaway", code: f.ErrCode}
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 && o.kind == "" {
				o = outcome{kind: "status", val: f.PseudoValue("status")}
			}
			if f.StreamEnded() {
				return o
			}
		case *http2.DataFrame:
			if f.StreamID == 1 {
				o.data = append(o.data, len(f.Data()))
				if f.StreamEnded() {
					return o
				}
				if n := len(f.Data()); n > 0 {
					_ = r.fr.WriteWindowUpdate(1, uint32(n))
					_ = r.fr.WriteWindowUpdate(0, uint32(n))
				}
			}
		}
	}
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

// TestH2Malformed sends, over h2c and TLS h2, the requests and frames
// RFC 9113 forbids, and checks the exact error the RFC asks for; the
// handler must not see a malformed request.
func TestH2Malformed(t *testing.T) {
	// The handler runs on its own goroutine, possibly after the client
	// has seen the stream's outcome: calls are recorded per client
	// connection, so that a late one is never counted for the next case.
	var calls sync.Map // client address -> true
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Store(r.RemoteAddr, true)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "causeway")
	})
	rst := func(c http2.ErrCode) outcome { return outcome{kind: "rst", code: c} }
	goaway := func(c http2.ErrCode) outcome { return outcome{kind: "goaway", code: c} }
	ok := outcome{kind: "status", val: "200"}
	hdr := func(kv ...string) func(r *rawH2) { return func(r *rawH2) { r.headers(true, kv...) } }
	settings := func(s ...http2.Setting) func(r *rawH2) {
		return func(r *rawH2) {
			if err := r.fr.WriteSettings(s...); err != nil {
				t.Fatal(err)
			}
		}
	}
	withBody := func(clen []string, data string) func(r *rawH2) {
		return func(r *rawH2) {
			kv := []string{":method", "POST", ":scheme", "http", ":path", "/", ":authority", "a.test"}
			for _, v := range clen {
				kv = append(kv, "content-length", v)
			}
			r.headers(false, kv...)
			_ = r.fr.WriteData(1, true, []byte(data))
		}
	}
	cases := []struct {
		name    string
		send    func(r *rawH2)
		want    outcome
		handled bool // the handler sees the request
	}{
		{"valid", hdr(get()...), ok, true},
		// §8.2.2: connection-specific fields; TE only "trailers".
		{"connection", hdr(get("connection", "keep-alive")...), rst(http2.ErrCodeProtocol), false},
		{"keep-alive", hdr(get("keep-alive", "timeout=5")...), rst(http2.ErrCodeProtocol), false},
		{"proxy-connection", hdr(get("proxy-connection", "keep-alive")...), rst(http2.ErrCodeProtocol), false},
		{"transfer-encoding", hdr(get("transfer-encoding", "chunked")...), rst(http2.ErrCodeProtocol), false},
		{"upgrade", hdr(get("upgrade", "websocket")...), rst(http2.ErrCodeProtocol), false},
		{"te gzip", hdr(get("te", "gzip")...), rst(http2.ErrCodeProtocol), false},
		{"te trailers, gzip", hdr(get("te", "trailers, gzip")...), rst(http2.ErrCodeProtocol), false},
		{"te trailers", hdr(get("te", "trailers")...), ok, true},
		// §8.2.1: field names and values.
		{"uppercase name", hdr(get("X-Upper", "1")...), rst(http2.ErrCodeProtocol), false},
		{"value leading space", hdr(get("x-a", " 1")...), rst(http2.ErrCodeProtocol), false},
		{"value trailing tab", hdr(get("x-a", "1\t")...), rst(http2.ErrCodeProtocol), false},
		{"value inner space", hdr(get("x-a", "1 2")...), ok, true},
		{"value NUL", hdr(get("x-a", "1\x002")...), rst(http2.ErrCodeProtocol), false},
		// §8.3: pseudo-header fields.
		{"pseudo after regular", hdr(":method", "GET", ":scheme", "http", "x-a", "1", ":path", "/", ":authority", "a.test"), rst(http2.ErrCodeProtocol), false},
		{"unknown pseudo", hdr(get(":foo", "bar")...), rst(http2.ErrCodeProtocol), false},
		{"response pseudo", hdr(get(":status", "200")...), rst(http2.ErrCodeProtocol), false},
		{"duplicate :path", hdr(":method", "GET", ":scheme", "http", ":path", "/", ":path", "/", ":authority", "a.test"), rst(http2.ErrCodeProtocol), false},
		{"duplicate :method", hdr(":method", "GET", ":method", "GET", ":scheme", "http", ":path", "/"), rst(http2.ErrCodeProtocol), false},
		{"missing :method", hdr(":scheme", "http", ":path", "/", ":authority", "a.test"), rst(http2.ErrCodeProtocol), false},
		{"missing :scheme", hdr(":method", "GET", ":path", "/", ":authority", "a.test"), rst(http2.ErrCodeProtocol), false},
		{"missing :path", hdr(":method", "GET", ":scheme", "http", ":authority", "a.test"), rst(http2.ErrCodeProtocol), false},
		{"empty :path", hdr(":method", "GET", ":scheme", "http", ":path", "", ":authority", "a.test"), rst(http2.ErrCodeProtocol), false},
		{"host differs from :authority", hdr(get("host", "b.test")...), rst(http2.ErrCodeProtocol), false},
		{"host equals :authority", hdr(get("host", "a.test")...), ok, true},
		// §8.5: CONNECT has :authority and no :scheme or :path.
		{"CONNECT", hdr(":method", "CONNECT", ":authority", "a.test:443"), ok, true},
		{"CONNECT with :path", hdr(":method", "CONNECT", ":authority", "a.test:443", ":path", "/"), rst(http2.ErrCodeProtocol), false},
		{"CONNECT with :scheme", hdr(":method", "CONNECT", ":authority", "a.test:443", ":scheme", "https"), rst(http2.ErrCodeProtocol), false},
		{"CONNECT without :authority", hdr(":method", "CONNECT"), rst(http2.ErrCodeProtocol), false},
		// §8.1.1: content-length must match the DATA; RFC 9110 §8.6.
		{"content-length matches", withBody([]string{"3"}, "abc"), ok, true},
		{"content-length above DATA", withBody([]string{"5"}, "abc"), rst(http2.ErrCodeProtocol), true},
		{"content-length below DATA", withBody([]string{"2"}, "abc"), rst(http2.ErrCodeProtocol), true},
		{"content-length not a number", withBody([]string{"3x"}, "abc"), rst(http2.ErrCodeProtocol), false},
		{"content-length conflicting", withBody([]string{"3", "4"}, "abc"), rst(http2.ErrCodeProtocol), false},
		// §4.2: a frame over SETTINGS_MAX_FRAME_SIZE (1 MiB announced).
		{"oversized DATA", func(r *rawH2) {
			r.headers(false, ":method", "POST", ":scheme", "http", ":path", "/", ":authority", "a.test")
			_ = r.fr.WriteData(1, true, make([]byte, 1<<20+1))
		}, goaway(http2.ErrCodeFrameSize), true},
		{"oversized HEADERS", func(r *rawH2) {
			_ = r.fr.WriteRawFrame(http2.FrameHeaders, 0x5, 1, make([]byte, 1<<20+1))
		}, goaway(http2.ErrCodeFrameSize), false},
		// §6.5: SETTINGS.
		{"ENABLE_PUSH 2", settings(http2.Setting{ID: http2.SettingEnablePush, Val: 2}), goaway(http2.ErrCodeProtocol), false},
		{"INITIAL_WINDOW_SIZE 2^31", settings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31}), goaway(http2.ErrCodeFlowControl), false},
		{"MAX_FRAME_SIZE 16383", settings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1<<14 - 1}), goaway(http2.ErrCodeProtocol), false},
		{"MAX_FRAME_SIZE 2^24", settings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 24}), goaway(http2.ErrCodeProtocol), false},
		{"SETTINGS ACK with payload", func(r *rawH2) {
			_ = r.fr.WriteRawFrame(http2.FrameSettings, http2.FlagSettingsAck, 0, make([]byte, 6))
		}, goaway(http2.ErrCodeFrameSize), false},
		{"SETTINGS length 5", func(r *rawH2) {
			_ = r.fr.WriteRawFrame(http2.FrameSettings, 0, 0, make([]byte, 5))
		}, goaway(http2.ErrCodeFrameSize), false},
		{"SETTINGS on a stream", func(r *rawH2) {
			_ = r.fr.WriteRawFrame(http2.FrameSettings, 0, 1, nil)
		}, goaway(http2.ErrCodeProtocol), false},
		// §6.5.3: repeated settings are processed in order: the last
		// INITIAL_WINDOW_SIZE (1) holds, so the answer comes a byte at a
		// time.
		{"repeated INITIAL_WINDOW_SIZE", func(r *rawH2) {
			_ = r.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100},
				http2.Setting{ID: 0x77, Val: 9}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
			r.headers(true, get()...)
		}, outcome{kind: "status", val: "200", data: []int{1, 1, 1, 1, 1, 1, 1, 1}}, true},
		{"repeated, then invalid ENABLE_PUSH", settings(http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingEnablePush, Val: 2}), goaway(http2.ErrCodeProtocol), false},
		{"repeated, then invalid INITIAL_WINDOW_SIZE", settings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31}, http2.Setting{ID: http2.SettingEnablePush, Val: 7}), goaway(http2.ErrCodeFlowControl), false},
	}
	for _, mode := range []string{"h2c", "tls"} {
		addr := serveEdge(t, h, mode == "tls")
		for _, tc := range cases {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				r := dialH2(t, addr, mode == "tls")
				tc.send(r)
				got := r.result()
				if got.kind != tc.want.kind || got.code != tc.want.code || got.val != tc.want.val ||
					(tc.want.data != nil && !equalInts(got.data, tc.want.data)) {
					t.Fatalf("got %+v, want %+v", got, tc.want)
				}
				client := r.c.LocalAddr().String()
				handled := func() bool { _, ok := calls.Load(client); return ok }
				if tc.handled {
					// The handler may start after the reset reached us.
					deadline := time.Now().Add(5 * time.Second)
					for !handled() && time.Now().Before(deadline) {
						time.Sleep(5 * time.Millisecond)
					}
				}
				if handled() != tc.handled {
					t.Fatalf("handler called: %v, want %v", handled(), tc.handled)
				}
			})
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestH2MalformedKeepsConnection: a reset malformed request leaves the
// connection and its HPACK state good for the next request, including
// the dynamic table entries the malformed block added.
func TestH2MalformedKeepsConnection(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("x-indexed"))
	})
	addr := serveEdge(t, h, false)
	r := dialH2(t, addr, false)
	r.headers(true, get("x-indexed", "kept", "connection", "close")...)
	if got := r.result(); got.kind != "rst" || got.code != http2.ErrCodeProtocol {
		t.Fatalf("malformed request: %+v", got)
	}
	// Stream 3 refers to the entries stream 1 indexed.
	r.buf.Reset()
	kv := get("x-indexed", "kept")
	for i := 0; i < len(kv); i += 2 {
		_ = r.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: r.buf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := f.(*http2.DataFrame); ok && d.StreamID == 3 {
			if string(d.Data()) != "kept" {
				t.Fatalf("body %q", d.Data())
			}
			return
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			t.Fatalf("GOAWAY %v", g.ErrCode)
		}
	}
}

// TestH2BadPreface: a connection that breaks the HTTP/2 preface is
// closed, never answered in HTTP/1.1 (RFC 9113 §3.4).
func TestH2BadPreface(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for _, tc := range []struct {
		name, raw string
		tls       bool
	}{
		{"h2c", "PRI * HTTP/2.0\r\n\r\nXM\r\n\r\n", false},
		{"tls", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serveEdge(t, h, tc.tls)
			var c net.Conn
			var err error
			if tc.tls {
				c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
			} else {
				c, err = net.Dial("tcp", addr)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, tc.raw); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			if err != nil && !isReset(err) {
				t.Fatalf("read: %v", err)
			}
			if bytes.Contains(got, []byte("HTTP/1.1")) {
				t.Fatalf("answered in HTTP/1.1: %q", got)
			}
			// Nothing, or the server's own SETTINGS and at most a GOAWAY
			// PROTOCOL_ERROR: §3.4 lets the GOAWAY be omitted.
			fr := http2.NewFramer(nil, bytes.NewReader(got))
			for {
				f, err := fr.ReadFrame()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("not HTTP/2 frames (%v): %q", err, got)
				}
				switch f := f.(type) {
				case *http2.SettingsFrame, *http2.WindowUpdateFrame:
				case *http2.GoAwayFrame:
					if f.ErrCode != http2.ErrCodeProtocol {
						t.Fatalf("GOAWAY %v", f.ErrCode)
					}
				default:
					t.Fatalf("unexpected %v", f.Header())
				}
			}
		})
	}
}
