package rewrite

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"causeway.dev/causeway/internal/ir"
)

// TestOnTheWire sends rewritten requests through a real client to a
// loopback server and checks the request line and Host it receives: Path
// and RawPath must agree, or net/http would re-encode the path.
func TestOnTheWire(t *testing.T) {
	type seen struct{ uri, host string }
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.RequestURI, r.Host}
	}))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	base, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		rw       *ir.Rewrite
		match    ir.PathMatch
		target   string
		wantURI  string
		wantHost string
	}{
		{"prefix and host", &ir.Rewrite{Hostname: ptr("one.example.org"), Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/one"}}, ir.PathMatch{Type: ir.PathPrefix, Value: "/prefix/one"}, "/prefix/one/two?a=b", "/one/two?a=b", "one.example.org"},
		{"encoded slash", &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/new"}}, ir.PathMatch{Type: ir.PathPrefix, Value: "/old"}, "/old/a%2Fb%20c", "/new/a%2Fb%20c", base.Host},
		{"full escaped", &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplaceFullPath, Value: "/x%2Fy"}}, ir.PathMatch{Type: ir.PathPrefix, Value: "/"}, "/anything?q", "/x%2Fy?q", base.Host},
		{"strip", &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/"}}, ir.PathMatch{Type: ir.PathPrefix, Value: "/strip-prefix"}, "/strip-prefix", "/", base.Host},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rw, err := New(tt.rw, tt.match)
			if err != nil {
				t.Fatal(err)
			}
			in, err := url.ParseRequestURI(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			u := *base
			u.Path, u.RawPath, u.RawQuery = in.Path, in.RawPath, in.RawQuery
			out, err := http.NewRequest("GET", u.String(), nil)
			if err != nil {
				t.Fatal(err)
			}
			rw.Apply(out)
			resp, err := tr.RoundTrip(out)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			s := <-got
			if s.uri != tt.wantURI || s.host != tt.wantHost {
				t.Errorf("backend saw %q Host %q, want %q Host %q", s.uri, s.host, tt.wantURI, tt.wantHost)
			}
		})
	}
}
