package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"causeway.dev/causeway/internal/ir"
)

// pattern reads left bytes of a fixed pattern, generated on the fly.
type pattern struct{ left int64 }

var patternBlock = []byte(strings.Repeat("abcdefghijklmnopqrstuvwxyz012345", 1024))

func (p *pattern) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n := copy(b, patternBlock)
	p.left -= int64(n)
	return n, nil
}

func TestStreamingUploadFlatMemory(t *testing.T) {
	const size = 1 << 30
	counted := make(chan int64, 1)
	be := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		counted <- n
		fmt.Fprint(w, n)
	})
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL)))
	c := client(t)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	peak := before.HeapInuse
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
			}
		}
	}()
	// Chunked (unknown length): the body is generated as it is sent.
	resp, err := c.Post(e.url("main")+"/upload", "application/octet-stream", io.MultiReader(&pattern{left: size}))
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != fmt.Sprint(size) {
		t.Fatalf("upload: %d %q", resp.StatusCode, b)
	}
	if n := <-counted; n != size {
		t.Fatalf("backend got %d bytes", n)
	}
	if growth := int64(peak) - int64(before.HeapInuse); growth > 64<<20 {
		t.Errorf("heap grew by %d MiB during a 1 GiB upload", growth>>20)
	}
}

func TestServerSentEvents(t *testing.T) {
	be := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		// A Content-Length-less stream; each event flushed upstream.
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL)))
	c := client(t)
	resp, err := c.Get(e.url("main") + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("content type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	for i := range 5 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := fmt.Sprintf("data: %d\n", i); line != want {
			t.Fatalf("event %d: %q, want %q", i, line, want)
		}
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTrailers(t *testing.T) {
	be := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Declared")
		w.WriteHeader(200)
		io.WriteString(w, "body")
		w.Header().Set("X-Declared", "d")
		w.Header().Set(http.TrailerPrefix+"X-Undeclared", "u")
	})
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL)))
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	h2 := &http.Transport{Protocols: &h2c}
	defer h2.CloseIdleConnections()
	for _, c := range []*http.Client{client(t), {Transport: h2}} {
		resp, err := c.Get(e.url("main") + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "body" || resp.Trailer.Get("X-Declared") != "d" || resp.Trailer.Get("X-Undeclared") != "u" {
			t.Errorf("%s: body %q trailers %v", resp.Proto, b, resp.Trailer)
		}
	}
}

func TestWebSocket(t *testing.T) {
	be := backendServer(t, websocket.Handler(func(ws *websocket.Conn) {
		for {
			var msg string
			if websocket.Message.Receive(ws, &msg) != nil || websocket.Message.Send(ws, msg) != nil {
				return
			}
		}
	}).ServeHTTP)
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL)))
	url := "ws" + strings.TrimPrefix(e.url("main"), "http") + "/echo"
	ws, err := websocket.Dial(url, "", "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for _, msg := range []string{"hello", "world", strings.Repeat("x", 100000)} {
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil {
			t.Fatal(err)
		}
		if got != msg {
			t.Errorf("echo of %d bytes came back as %d bytes", len(msg), len(got))
		}
	}
}

func TestShutdownClosesUpgrades(t *testing.T) {
	be := backendServer(t, websocket.Handler(func(ws *websocket.Conn) {
		io.Copy(io.Discard, ws)
	}).ServeHTTP)
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{prefixRoute("r", "/", backend("be", 1))}, cluster("be", be.URL)))
	ws, err := websocket.Dial("ws"+strings.TrimPrefix(e.url("main"), "http")+"/", "", "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with an open WebSocket: %v", err)
	}
	var msg string
	if err := websocket.Message.Receive(ws, &msg); err == nil {
		t.Error("WebSocket still open after Shutdown")
	}
}
