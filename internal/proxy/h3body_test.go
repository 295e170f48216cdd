package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// An HTTP/3 request without a body reaches the backend without one: quic-go
// reports an unknown length (-1) for any request without content-length,
// which the upstream client would otherwise send chunked. A request with
// a body keeps it.
func TestH3RequestBodyUpstream(t *testing.T) {
	type seen struct {
		te   []string
		cl   int64
		body string
	}
	got := make(chan seen, 1)
	be := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.TransferEncoding, r.ContentLength, string(b)}
		_, _ = io.WriteString(w, "ok")
	})
	cfg, pool := h3Config(t, be.URL, true)
	e := newEnv(t, Options{})
	e.apply(cfg)
	c := h3Client(t, pool)
	for _, tc := range []struct {
		method, body string
		wantTE       bool
		wantCL       int64
	}{
		{"GET", "", false, 0},
		{"DELETE", "", false, 0},
		{"OPTIONS", "", false, 0},
		{"POST", "hello", false, 5},
		// A DELETE with a body of unknown length keeps it (sent chunked).
		{"DELETE", "zz", true, -1},
	} {
		var body io.Reader = http.NoBody
		switch {
		case tc.wantTE:
			body = struct{ io.Reader }{strings.NewReader(tc.body)} // length unknown to the client
		case tc.body != "":
			body = strings.NewReader(tc.body)
		}
		req, _ := http.NewRequest(tc.method, e.url("tls")+"/x", body)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 3 || resp.StatusCode != 200 {
			t.Fatalf("%s: got %s %d", tc.method, resp.Proto, resp.StatusCode)
		}
		s := <-got
		if (len(s.te) > 0) != tc.wantTE || s.cl != tc.wantCL || s.body != tc.body {
			t.Errorf("%s: upstream saw TE %v, length %d, body %q; want chunked %v, length %d, body %q", tc.method, s.te, s.cl, s.body, tc.wantTE, tc.wantCL, tc.body)
		}
	}
}
