package h1

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
)

var (
	benchBody = bytes.Repeat([]byte("x"), 64)
	benchType = []string{"text/plain"}
	benchLen  = []string{"64"}
	benchReq  = []byte("GET /bench/path?x=1 HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")
)

// benchHandler is the tiny handler of the benchmarks: a 64-byte body with
// its length and type set, as the proxy copies an upstream response.
var benchHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = benchType
	h["Content-Length"] = benchLen
	w.WriteHeader(http.StatusOK)
	w.Write(benchBody)
})

// BenchmarkServe measures keep-alive request/response pairs on loopback
// against this server and net/http's, with the same minimal client. It
// reports the process CPU time per request (client included, the same
// for both) as cpu-ns/op; the handler and the client do not allocate, so
// allocs/op are the server's.
func BenchmarkServe(b *testing.B) {
	b.Run("h1", func(b *testing.B) {
		benchServe(b, serveH1(b, &Server{Handler: benchHandler}))
	})
	b.Run("net-http", func(b *testing.B) {
		benchServe(b, serveStd(b, benchHandler))
	})
}

func benchServe(b *testing.B, addr string) {
	var failed atomic.Value
	b.SetParallelism(8) // 16 connections on 2 cores
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			failed.Store(err)
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		for pb.Next() {
			if _, err := c.Write(benchReq); err != nil {
				failed.Store(err)
				return
			}
			if err := readBenchResponse(c, buf); err != nil {
				failed.Store(err)
				return
			}
		}
	})
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// readBenchResponse reads one response with a Content-Length, without
// allocating.
func readBenchResponse(c net.Conn, buf []byte) error {
	n := 0
	for {
		m, err := c.Read(buf[n:])
		n += m
		if end := bytes.Index(buf[:n], []byte("\r\n\r\n")); end >= 0 {
			i := bytes.Index(buf[:end], []byte("Content-Length: "))
			if i < 0 {
				return errors.New("no Content-Length")
			}
			j := bytes.IndexByte(buf[i:end+2], '\r')
			cl, err := strconv.Atoi(string(buf[i+16 : i+j]))
			if err != nil {
				return err
			}
			total := end + 4 + cl
			for n < total {
				m, err := c.Read(buf[n:])
				n += m
				if err != nil {
					return err
				}
			}
			if n != total {
				return errors.New("unexpected bytes after the response")
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}
