package h1

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FuzzH2C feeds arbitrary bytes after the preface to an h2c connection:
// the server must close it (the client half-closes) without crashing or
// hanging, and keep serving other connections.
func FuzzH2C(f *testing.F) {
	var blk, frames bytes.Buffer
	enc := hpack.NewEncoder(&blk)
	for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/"}, {":authority", "a"}, {"content-length", "3"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	fr := http2.NewFramer(&frames, nil)
	_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 9})
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk.Bytes(), EndHeaders: true})
	_ = fr.WriteData(1, true, []byte("ab"))
	f.Add(frames.Bytes())
	frames.Reset()
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk.Bytes()[:3]})
	_ = fr.WriteContinuation(1, true, blk.Bytes()[3:])
	_ = fr.WriteRawFrame(http2.FrameHeaders, 0x8|0x4, 3, []byte{200, 1})
	f.Add(frames.Bytes())
	f.Add([]byte{0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 1})
	f.Add([]byte("\x00\x00\x0c\x04\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x02\x00\x00\x00\x02"))

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	})
	addr := serveEdge(f, h, false)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(c, http2.ClientPreface)
		_, _ = c.Write(data)
		_ = c.(*net.TCPConn).CloseWrite()
		// The server ends the connection: EOF, or a reset if it
		// closed with our bytes unread; a timeout is a hang.
		if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
			t.Fatalf("server did not close: %v", err)
		}
	})
}
