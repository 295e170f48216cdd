package upstream

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	"causeway.dev/causeway/internal/ir"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// BenchmarkH2Unary compares this package's HTTP/2 client with net/http's
// (http.Transport with unencrypted HTTP/2, the client before it) on a
// gRPC-like unary exchange: 64-byte request of unknown length (as a
// proxied gRPC body is) and 64-byte response with trailers, against
// a minimal HTTP/2 server on loopback that, like grpc-go, answers with
// HEADERS, DATA and trailers in one write (so that the figures are mostly
// the client's). cpu-ms/1k-req is the process's CPU time (client and
// server) per thousand requests.
func BenchmarkH2Unary(b *testing.B) {
	msg := bytes.Repeat([]byte("m"), 64)
	addr := rawGRPCServer(b, msg)
	m := NewManager(Options{})
	defer m.Close()
	m.Update(benchH2Clusters(addr))
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p, DisableCompression: true}
	defer tr.CloseIdleConnections()

	run := func(b *testing.B, rt func(*http.Request) (*http.Response, error)) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		buf := make([]byte, 512)
		b.ReportAllocs()
		start := cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			rd := bytes.NewReader(msg)
			for pb.Next() {
				rd.Reset(msg)
				req := newReq(ctx, "POST", "/grpc.testing.TestService/UnaryCall", io.NopCloser(rd))
				req.URL.Host, req.URL.Scheme = addr, "http"
				req.Header.Set("Content-Type", "application/grpc")
				req.Header.Set("Te", "trailers")
				req.Header.Set("Grpc-Timeout", "999m")
				resp, err := rt(req)
				if err != nil {
					b.Fatal(err)
				}
				for {
					_, err := resp.Body.Read(buf)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				resp.Body.Close()
				if resp.Trailer.Get("Grpc-Status") != "0" {
					b.Fatal("no grpc-status trailer")
				}
			}
		})
		reportCPU(b, start)
	}
	b.Run("upstream", func(b *testing.B) { run(b, m.Cluster("c").RoundTrip) })
	b.Run("net-http", func(b *testing.B) { run(b, tr.RoundTrip) })
}

func benchH2Clusters(addr string) []*ir.Cluster {
	return []*ir.Cluster{{Name: "c", Protocol: ir.UpstreamH2C, Endpoints: []ir.Endpoint{{Address: addr}}}}
}

// rawGRPCServer answers every stream, once its request has ended, with a
// gRPC response (msg, grpc-status 0), flushing when its input runs dry.
func rawGRPCServer(b *testing.B, msg []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	serve := func(nc net.Conn) {
		defer nc.Close()
		br := bufio.NewReader(nc)
		bw := bufio.NewWriter(nc)
		if _, err := io.ReadFull(br, make([]byte, len(http2.ClientPreface))); err != nil {
			return
		}
		fr := http2.NewFramer(bw, br)
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		fr.WriteSettings()
		bw.Flush()
		var recv uint32
		respond := func(id uint32) {
			hb.Reset()
			enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
			enc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/grpc"})
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true})
			fr.WriteData(id, false, msg)
			hb.Reset()
			enc.WriteField(hpack.HeaderField{Name: "grpc-status", Value: "0"})
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true, EndStream: true})
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.MetaHeadersFrame:
				if f.StreamEnded() {
					respond(f.StreamID)
				}
			case *http2.DataFrame:
				if recv += f.Length; recv >= 16<<10 {
					fr.WriteWindowUpdate(0, recv)
					recv = 0
				}
				if f.StreamEnded() {
					respond(f.StreamID)
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					fr.WritePing(true, f.Data)
				}
			}
			if br.Buffered() == 0 && bw.Flush() != nil {
				return
			}
		}
	}
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { serve(nc) })
		}
	})
	return ln.Addr().String()
}
