// Package demo is a small HTTP backend for examples and tests: it answers
// every request with a JSON description of what it received, so that routing,
// header filters and rewrites can be seen from a client.
package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"time"
)

// Echo is what the backend answers.
type Echo struct {
	Backend string              `json:"backend"`
	Method  string              `json:"method"`
	Host    string              `json:"host"`
	Path    string              `json:"path"`
	Query   string              `json:"query,omitempty"`
	Proto   string              `json:"proto"`
	Headers map[string][]string `json:"headers"`
	Body    int64               `json:"bodyBytes"`
}

// Handler returns the demo backend's handler. name is reported as "backend".
//
// Besides echoing, it understands a few query parameters so that examples
// can show failure handling: ?status=N answers with status N, ?delay=D
// (a Go duration) waits before answering, ?size=N sends N bytes of body.
func Handler(name string) http.Handler {
	if name == "" {
		name, _ = os.Hostname()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if d, err := time.ParseDuration(q.Get("delay")); err == nil && d > 0 {
			select {
			case <-time.After(min(d, time.Minute)):
			case <-r.Context().Done():
				return
			}
		}
		n, _ := io.Copy(io.Discard, r.Body)
		code := http.StatusOK
		if s, err := strconv.Atoi(q.Get("status")); err == nil && s >= 200 && s <= 599 {
			code = s
		}
		w.Header().Set("X-Backend", name)
		if size, err := strconv.Atoi(q.Get("size")); err == nil && size >= 0 {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(size))
			w.WriteHeader(code)
			writeBytes(w, size)
			return
		}
		hdr := make(map[string][]string, len(r.Header))
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			hdr[k] = r.Header[k]
		}
		e := Echo{Backend: name, Method: r.Method, Host: r.Host, Path: r.URL.Path,
			Query: r.URL.RawQuery, Proto: r.Proto, Headers: hdr, Body: n}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(e)
	})
}

func writeBytes(w io.Writer, n int) {
	var buf [4096]byte
	for i := range buf {
		buf[i] = 'x'
	}
	for n > 0 {
		k := min(n, len(buf))
		if _, err := w.Write(buf[:k]); err != nil {
			return
		}
		n -= k
	}
}

// Serve runs a demo backend named name on addr until the listener fails.
func Serve(addr, name string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("demo backend: %w", err)
	}
	srv := &http.Server{Handler: Handler(name), ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}
