package h1

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// frameSource is a connection whose reads return data, then io.EOF.
type frameSource struct {
	net.Conn
	data []byte
}

func (s *frameSource) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, nil
}

// requestFrames encodes n GET requests as a Go client does, on streams
// 1, 3, 5...; with newPath each has its own :path, a new literal.
func requestFrames(n int, newPath bool) []byte {
	var out, blk bytes.Buffer
	enc := hpack.NewEncoder(&blk)
	fr := http2.NewFramer(&out, nil)
	for i := range n {
		blk.Reset()
		path := "/api/v1/items"
		if newPath {
			path += "/" + strconv.Itoa(i)
		}
		for _, f := range []hpack.HeaderField{
			{Name: ":authority", Value: "api.example.com"}, {Name: ":method", Value: "GET"},
			{Name: ":path", Value: path}, {Name: ":scheme", Value: "https"},
			{Name: "accept", Value: "application/json"}, {Name: "accept-encoding", Value: "gzip"},
			{Name: "user-agent", Value: "Go-http-client/2.0"}, {Name: "te", Value: "trailers"},
		} {
			_ = enc.WriteField(f)
		}
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: blk.Bytes(), EndStream: true, EndHeaders: true})
	}
	return out.Bytes()
}

// BenchmarkH2Guard measures what the guard adds to a valid request: its
// frame parsing and HPACK decoding of one HEADERS frame, on a connection
// whose first request filled the HPACK table. "indexed" repeats the
// request (a Go client then sends only table indexes); "new-path" sends
// a new :path each time (one new literal).
func BenchmarkH2Guard(b *testing.B) {
	for _, bc := range []struct {
		name    string
		newPath bool
	}{{"indexed", false}, {"new-path", true}} {
		b.Run(bc.name, func(b *testing.B) {
			all := requestFrames(b.N+1, bc.newPath)
			first := len(requestFrames(1, bc.newPath))
			g := newGuard(&frameSource{data: all}, 1<<20, 4096)
			g.pass = 0 // no preface here
			buf := make([]byte, 32<<10)
			for read := 0; read < first; {
				n, err := g.Read(buf[:first-read])
				if err != nil {
					b.Fatal(err)
				}
				read += n
			}
			b.ReportAllocs()
			b.SetBytes(int64((len(all) - first) / b.N))
			runtime.GC() // not the setup's garbage in the timing
			b.ResetTimer()
			for {
				if _, err := g.Read(buf); err != nil {
					break
				}
			}
			b.StopTimer()
			if g.off || g.blk.bad {
				b.Fatal("guard refused valid frames")
			}
		})
	}
}

// BenchmarkH2CRequest is a whole h2c request through Server and HTTP2,
// for scale.
func BenchmarkH2CRequest(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	h2 := NewHTTP2(&http.Server{Handler: h})
	defer func() { _ = h2.Shutdown(context.Background()) }()
	addr := serveH1(b, &Server{Handler: h, H2C: h2.ServeConn})
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: p}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := "http://" + addr + "/"
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
