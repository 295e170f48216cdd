package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"causeway.dev/causeway/internal/ir"
)

// An HTTP/2 request without a body goes upstream without one (not as a
// chunked body of unknown length); one with a body keeps it.
func TestH2RequestBodyUpstream(t *testing.T) {
	type seen struct {
		te   []string
		cl   int64
		body string
	}
	got := make(chan seen, 1)
	srv := backendServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.TransferEncoding, r.ContentLength, string(b)}
		_, _ = io.WriteString(w, "ok")
	})
	e := newEnv(t, Options{})
	e.apply(config([]*ir.Route{prefixRoute("r", "/", backend("c", 1))}, cluster("c", srv.URL)))
	c := h2cClient(t)
	for _, tc := range []struct {
		method, body string
		want         seen
	}{
		{"GET", "", seen{nil, 0, ""}},
		{"DELETE", "", seen{nil, 0, ""}},
		{"POST", "hello", seen{nil, 5, "hello"}},
	} {
		var body io.Reader = http.NoBody
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		req, _ := http.NewRequest(tc.method, e.url("main")+"/x", body)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
			t.Fatalf("%s: got %s %d", tc.method, resp.Proto, resp.StatusCode)
		}
		s := <-got
		if len(s.te) != len(tc.want.te) || s.cl != tc.want.cl || s.body != tc.want.body {
			t.Errorf("%s: upstream saw TE %v, length %d, body %q; want %v, %d, %q", tc.method, s.te, s.cl, s.body, tc.want.te, tc.want.cl, tc.want.body)
		}
	}
}
