package upstream

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"causeway.dev/causeway/internal/ir"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FuzzH2Frames feeds arbitrary server bytes, after a valid SETTINGS frame,
// to the client's frame reader during a request: it must neither panic
// nor hang, and a response it returns must be readable to an end.
func FuzzH2Frames(f *testing.F) {
	var seed bytes.Buffer
	fr := http2.NewFramer(&seed, nil)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/grpc"})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	fr.WriteData(1, false, []byte("hello"))
	fr.WriteWindowUpdate(0, 1000)
	fr.WritePing(false, [8]byte{7})
	hb.Reset()
	enc.WriteField(hpack.HeaderField{Name: "grpc-status", Value: "0"})
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true})
	f.Add(seed.Bytes())
	seed.Reset()
	fr.WriteRSTStream(1, http2.ErrCodeRefusedStream)
	fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	f.Add(seed.Bytes())

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	m := NewManager(Options{})
	defer m.Close()
	f.Fuzz(func(t *testing.T, data []byte) {
		e := newEndpoint(m, epKey{proto: ir.UpstreamH2C, network: "tcp", addr: ln.Addr().String()}, 0, nil)
		defer e.close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			defer nc.Close()
			io.ReadFull(nc, make([]byte, len(http2.ClientPreface)))
			sf := http2.NewFramer(nc, nil)
			sf.WriteSettings()
			nc.Write(data)
			nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			io.Copy(io.Discard, nc) // until the client gives up
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		resp, _, err := e.roundTrip(newReq(ctx, "GET", "/", nil))
		if err == nil {
			io.Copy(io.Discard, resp.Body) // ends at EOF, an error or the deadline
			resp.Body.Close()
		}
		e.close()
		<-done
	})
}
