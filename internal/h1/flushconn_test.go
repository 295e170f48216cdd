package h1

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

func h2cTestClient(t testing.TB) *http.Client {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func serveH2C(t testing.TB, h http.Handler) string {
	h2 := NewHTTP2(&http.Server{Handler: h})
	t.Cleanup(func() { _ = h2.Shutdown(context.Background()) })
	return serveH1(t, &Server{Handler: h, H2C: h2.ServeConn})
}

// A streamed response is not held back by the write coalescing: each
// event reaches the client while the handler waits for it to be read.
func TestHTTP2StreamFlushedPromptly(t *testing.T) {
	next := make(chan struct{})
	addr := serveH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	resp, err := h2cTestClient(t).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("got %s, want HTTP/2", resp.Proto)
	}
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := fmt.Sprintf("data: %d\n", i); line != want {
			t.Fatalf("event %d: got %q, want %q", i, line, want)
		}
		_, _ = br.ReadString('\n')
		next <- struct{}{}
	}
}

// Many concurrent small responses on one connection, whose frames the
// writer coalesces, all arrive whole and in order per stream.
func TestHTTP2CoalescedResponsesComplete(t *testing.T) {
	addr := serveH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Path", r.URL.Path)
		_, _ = io.WriteString(w, r.URL.Path+"-body")
	}))
	c := h2cTestClient(t)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			path := fmt.Sprintf("/r%d", i)
			resp, err := c.Get("http://" + addr + path)
			if err != nil {
				errs <- err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != path+"-body" || resp.Header.Get("X-Path") != path || resp.ProtoMajor != 2 {
				errs <- fmt.Errorf("%s: got %q %v %s (%v)", path, b, resp.Header, resp.Proto, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkH2CParallel is concurrent h2c requests on a few connections,
// where coalescing writes pays.
func BenchmarkH2CParallel(b *testing.B) {
	addr := serveH2C(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	c := h2cTestClient(b)
	url := "http://" + addr + "/"
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
