package redirect

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"causeway.dev/causeway/internal/ir"
)

func ptr[T any](v T) *T { return &v }

func prefix(v string) ir.PathMatch { return ir.PathMatch{Type: ir.PathPrefix, Value: v} }

type listener struct {
	scheme string
	port   int
}

var (
	http80    = listener{"http", 80}
	http8080  = listener{"http", 8080}
	https443  = listener{"https", 443}
	https8443 = listener{"https", 8443}
)

// The cases are the conformance tests httproute-redirect-port,
// -redirect-scheme, -redirect-port-and-scheme, -redirect-host-and-status,
// -redirect-path and -30x-redirect, plus the port rules of the
// HTTPRequestRedirectFilter doc.
func TestResponse(t *testing.T) {
	tests := []struct {
		name     string
		rd       ir.Redirect
		match    ir.PathMatch
		l        listener
		host     string // in.Host; "gw" when empty
		target   string
		wantCode int
		wantLoc  string
	}{
		// httproute-redirect-port (listener http/80).
		{name: "port", rd: ir.Redirect{Port: ptr(8083)}, l: http80, target: "/port", wantCode: 302, wantLoc: "http://gw:8083/port"},
		{name: "port and host", rd: ir.Redirect{Port: ptr(8083), Hostname: ptr("example.org")}, l: http80, target: "/port-and-host", wantCode: 302, wantLoc: "http://example.org:8083/port-and-host"},
		{name: "port and status", rd: ir.Redirect{Port: ptr(8083), StatusCode: 301}, l: http80, target: "/port-and-status", wantCode: 301, wantLoc: "http://gw:8083/port-and-status"},
		{name: "port host status", rd: ir.Redirect{Port: ptr(8083), Hostname: ptr("example.org"), StatusCode: 302}, l: http80, target: "/port-and-host-and-status", wantCode: 302, wantLoc: "http://example.org:8083/port-and-host-and-status"},

		// httproute-redirect-scheme (listener http/80).
		{name: "scheme", rd: ir.Redirect{Scheme: ptr("https")}, l: http80, target: "/scheme", wantCode: 302, wantLoc: "https://gw/scheme"},
		{name: "scheme and host", rd: ir.Redirect{Scheme: ptr("https"), Hostname: ptr("example.org")}, l: http80, target: "/scheme-and-host", wantCode: 302, wantLoc: "https://example.org/scheme-and-host"},
		{name: "scheme and status", rd: ir.Redirect{Scheme: ptr("https"), StatusCode: 301}, l: http80, target: "/scheme-and-status", wantCode: 301, wantLoc: "https://gw/scheme-and-status"},

		// httproute-redirect-port-and-scheme, listener http/80.
		{name: "80 scheme nil port nil", rd: ir.Redirect{Hostname: ptr("example.org")}, l: http80, target: "/scheme-nil-and-port-nil", wantCode: 302, wantLoc: "http://example.org/scheme-nil-and-port-nil"},
		{name: "80 scheme nil port 80", rd: ir.Redirect{Hostname: ptr("example.org"), Port: ptr(80)}, l: http80, target: "/scheme-nil-and-port-80", wantCode: 302, wantLoc: "http://example.org/scheme-nil-and-port-80"},
		{name: "80 scheme nil port 8080", rd: ir.Redirect{Hostname: ptr("example.org"), Port: ptr(8080)}, l: http80, target: "/scheme-nil-and-port-8080", wantCode: 302, wantLoc: "http://example.org:8080/scheme-nil-and-port-8080"},
		{name: "80 scheme https port nil", rd: ir.Redirect{Hostname: ptr("example.org"), Scheme: ptr("https")}, l: http80, target: "/scheme-https-and-port-nil", wantCode: 302, wantLoc: "https://example.org/scheme-https-and-port-nil"},
		{name: "80 scheme https port 443", rd: ir.Redirect{Hostname: ptr("example.org"), Scheme: ptr("https"), Port: ptr(443)}, l: http80, target: "/scheme-https-and-port-443", wantCode: 302, wantLoc: "https://example.org/scheme-https-and-port-443"},
		{name: "80 scheme https port 8443", rd: ir.Redirect{Hostname: ptr("example.org"), Scheme: ptr("https"), Port: ptr(8443)}, l: http80, target: "/scheme-https-and-port-8443", wantCode: 302, wantLoc: "https://example.org:8443/scheme-https-and-port-8443"},

		// httproute-redirect-port-and-scheme, listener http/8080.
		{name: "8080 scheme nil port nil", rd: ir.Redirect{Hostname: ptr("example.org")}, l: http8080, target: "/scheme-nil-and-port-nil", wantCode: 302, wantLoc: "http://example.org:8080/scheme-nil-and-port-nil"},
		{name: "8080 scheme nil port 80", rd: ir.Redirect{Hostname: ptr("example.org"), Port: ptr(80)}, l: http8080, target: "/scheme-nil-and-port-80", wantCode: 302, wantLoc: "http://example.org/scheme-nil-and-port-80"},
		{name: "8080 scheme https port nil", rd: ir.Redirect{Hostname: ptr("example.org"), Scheme: ptr("https")}, l: http8080, target: "/scheme-https-and-port-nil", wantCode: 302, wantLoc: "https://example.org/scheme-https-and-port-nil"},

		// httproute-redirect-port-and-scheme, listener https/443.
		{name: "443 scheme nil port nil", rd: ir.Redirect{Hostname: ptr("example.org")}, l: https443, host: "example.org", target: "/scheme-nil-and-port-nil", wantCode: 302, wantLoc: "https://example.org/scheme-nil-and-port-nil"},
		{name: "443 scheme nil port 443", rd: ir.Redirect{Hostname: ptr("example.org"), Port: ptr(443)}, l: https443, host: "example.org", target: "/scheme-nil-and-port-443", wantCode: 302, wantLoc: "https://example.org/scheme-nil-and-port-443"},
		{name: "443 scheme nil port 8443", rd: ir.Redirect{Hostname: ptr("example.org"), Port: ptr(8443)}, l: https443, host: "example.org", target: "/scheme-nil-and-port-8443", wantCode: 302, wantLoc: "https://example.org:8443/scheme-nil-and-port-8443"},
		{name: "443 scheme http port nil", rd: ir.Redirect{Hostname: ptr("example.org"), Scheme: ptr("http")}, l: https443, host: "example.org", target: "/scheme-http-and-port-nil", wantCode: 302, wantLoc: "http://example.org/scheme-http-and-port-nil"},
		{name: "443 scheme http port 80", rd: ir.Redirect{Hostname: ptr("example.org"), Scheme: ptr("http"), Port: ptr(80)}, l: https443, host: "example.org", target: "/scheme-http-and-port-80", wantCode: 302, wantLoc: "http://example.org/scheme-http-and-port-80"},
		{name: "443 scheme http port 8080", rd: ir.Redirect{Hostname: ptr("example.org"), Scheme: ptr("http"), Port: ptr(8080)}, l: https443, host: "example.org", target: "/scheme-http-and-port-8080", wantCode: 302, wantLoc: "http://example.org:8080/scheme-http-and-port-8080"},

		// Port rules of the doc beyond conformance.
		{name: "https 8443 scheme nil keeps listener port", rd: ir.Redirect{}, l: https8443, target: "/a", wantCode: 302, wantLoc: "https://gw:8443/a"},
		{name: "explicit same scheme uses well-known port", rd: ir.Redirect{Scheme: ptr("http")}, l: http8080, target: "/a", wantCode: 302, wantLoc: "http://gw/a"},
		{name: "explicit port 443 on http is kept", rd: ir.Redirect{Port: ptr(443)}, l: http80, target: "/a", wantCode: 302, wantLoc: "http://gw:443/a"},
		{name: "explicit port 80 on https is kept", rd: ir.Redirect{Scheme: ptr("https"), Port: ptr(80)}, l: http80, target: "/a", wantCode: 302, wantLoc: "https://gw:80/a"},
		{name: "unknown listener port omitted", rd: ir.Redirect{}, l: listener{"http", 0}, target: "/a", wantCode: 302, wantLoc: "http://gw/a"},

		// httproute-redirect-host-and-status.
		{name: "hostname", rd: ir.Redirect{Hostname: ptr("example.org")}, l: http80, target: "/hostname-redirect", wantCode: 302, wantLoc: "http://example.org/hostname-redirect"},
		{name: "host and status", rd: ir.Redirect{Hostname: ptr("example.org"), StatusCode: 301}, l: http80, target: "/host-and-status", wantCode: 301, wantLoc: "http://example.org/host-and-status"},
		// httproute-303/307/308-redirect.
		{name: "303", rd: ir.Redirect{StatusCode: 303}, l: http80, target: "/x", wantCode: 303, wantLoc: "http://gw/x"},
		{name: "307", rd: ir.Redirect{StatusCode: 307}, l: http80, target: "/x", wantCode: 307, wantLoc: "http://gw/x"},
		{name: "308", rd: ir.Redirect{StatusCode: 308}, l: http80, target: "/x", wantCode: 308, wantLoc: "http://gw/x"},

		// httproute-redirect-path.
		{name: "prefix", rd: ir.Redirect{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/replacement-prefix"}}, match: prefix("/original-prefix"), l: http80, target: "/original-prefix/lemon", wantCode: 302, wantLoc: "http://gw/replacement-prefix/lemon"},
		{name: "full", rd: ir.Redirect{Path: &ir.PathModifier{Type: ir.ReplaceFullPath, Value: "/full-path-replacement"}}, match: prefix("/full"), l: http80, target: "/full/path/original", wantCode: 302, wantLoc: "http://gw/full-path-replacement"},
		{name: "path and host", rd: ir.Redirect{Hostname: ptr("example.org"), Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/replacement-prefix"}}, match: prefix("/path-and-host"), l: http80, target: "/path-and-host", wantCode: 302, wantLoc: "http://example.org/replacement-prefix"},
		{name: "path and status", rd: ir.Redirect{StatusCode: 301, Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/replacement-prefix"}}, match: prefix("/path-and-status"), l: http80, target: "/path-and-status", wantCode: 301, wantLoc: "http://gw/replacement-prefix"},
		{name: "full path and host", rd: ir.Redirect{Hostname: ptr("example.org"), Path: &ir.PathModifier{Type: ir.ReplaceFullPath, Value: "/replacement-full"}}, match: prefix("/full-path-and-host"), l: http80, target: "/full-path-and-host", wantCode: 302, wantLoc: "http://example.org/replacement-full"},
		{name: "full path and status", rd: ir.Redirect{StatusCode: 301, Path: &ir.PathModifier{Type: ir.ReplaceFullPath, Value: "/replacement-full"}}, match: prefix("/full-path-and-status"), l: http80, target: "/full-path-and-status", wantCode: 301, wantLoc: "http://gw/replacement-full"},
		{name: "prefix keeps trailing slash", rd: ir.Redirect{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/xyz"}}, match: prefix("/foo"), l: http80, target: "/foo/", wantCode: 302, wantLoc: "http://gw/xyz/"},
		{name: "strip prefix", rd: ir.Redirect{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/"}}, match: prefix("/foo"), l: http80, target: "/foo", wantCode: 302, wantLoc: "http://gw/"},

		// Query, host forms and encoding.
		{name: "query kept", rd: ir.Redirect{Scheme: ptr("https")}, l: http80, target: "/a?x=1&y=%20", wantCode: 302, wantLoc: "https://gw/a?x=1&y=%20"},
		{name: "query kept with prefix", rd: ir.Redirect{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/new"}}, match: prefix("/old"), l: http80, target: "/old/a?x=1", wantCode: 302, wantLoc: "http://gw/new/a?x=1"},
		{name: "query kept with full path", rd: ir.Redirect{Path: &ir.PathModifier{Type: ir.ReplaceFullPath, Value: "/new"}}, match: prefix("/old"), l: http80, target: "/old/a?x=1", wantCode: 302, wantLoc: "http://gw/new?x=1"},
		{name: "port stripped from host", rd: ir.Redirect{Scheme: ptr("https")}, l: http8080, host: "app.example:8080", target: "/", wantCode: 302, wantLoc: "https://app.example/"},
		{name: "ipv6 host", rd: ir.Redirect{}, l: http8080, host: "[::1]:8080", target: "/a", wantCode: 302, wantLoc: "http://[::1]:8080/a"},
		{name: "ipv6 host no port", rd: ir.Redirect{Scheme: ptr("https")}, l: http80, host: "[2001:db8::1]", target: "/a", wantCode: 302, wantLoc: "https://[2001:db8::1]/a"},
		{name: "bare ipv6 host", rd: ir.Redirect{}, l: http80, host: "2001:db8::1", target: "/a", wantCode: 302, wantLoc: "http://[2001:db8::1]/a"},
		{name: "ipv4 host", rd: ir.Redirect{Port: ptr(9000)}, l: http80, host: "127.0.0.1:80", target: "/a", wantCode: 302, wantLoc: "http://127.0.0.1:9000/a"},
		{name: "escaped path kept", rd: ir.Redirect{Scheme: ptr("https")}, l: http80, target: "/a%2Fb/c%20d", wantCode: 302, wantLoc: "https://gw/a%2Fb/c%20d"},
		{name: "escaped path with prefix", rd: ir.Redirect{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/new"}}, match: prefix("/old"), l: http80, target: "/old/a%2Fb", wantCode: 302, wantLoc: "http://gw/new/a%2Fb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd, err := New(&tt.rd, tt.match)
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.ParseRequestURI(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			host := tt.host
			if host == "" {
				host = "gw"
			}
			in := &http.Request{Method: "GET", Host: host, URL: u, Header: http.Header{}}
			code, loc := rd.Response(in, tt.l.scheme, tt.l.port)
			if code != tt.wantCode || loc != tt.wantLoc {
				t.Errorf("Response = %d %q, want %d %q", code, loc, tt.wantCode, tt.wantLoc)
			}
			// The Location must be a valid absolute URL.
			if pu, err := url.Parse(loc); err != nil || !pu.IsAbs() {
				t.Errorf("Location %q does not parse as an absolute URL: %v", loc, err)
			}
		})
	}
}

func TestResponseHostFallback(t *testing.T) {
	rd, err := New(&ir.Redirect{}, ir.PathMatch{})
	if err != nil {
		t.Fatal(err)
	}
	// HTTP/1.0 request in absolute form without a Host header.
	in := &http.Request{URL: &url.URL{Scheme: "http", Host: "abs.example:8080", Path: "/p"}}
	if _, loc := rd.Response(in, "http", 8080); loc != "http://abs.example:8080/p" {
		t.Errorf("Location = %q, want http://abs.example:8080/p", loc)
	}
	// No path at all (absolute-form target "http://h"): Location gets "/".
	in = &http.Request{Host: "h", URL: &url.URL{RawQuery: "q=1"}}
	if _, loc := rd.Response(in, "https", 443); loc != "https://h/?q=1" {
		t.Errorf("Location = %q, want https://h/?q=1", loc)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name  string
		rd    *ir.Redirect
		match ir.PathMatch
		want  string
	}{
		{"nil", nil, ir.PathMatch{}, "nil redirect"},
		{"status 200", &ir.Redirect{StatusCode: 200}, ir.PathMatch{}, "status code 200"},
		{"status 304", &ir.Redirect{StatusCode: 304}, ir.PathMatch{}, "status code 304"},
		{"scheme ftp", &ir.Redirect{Scheme: ptr("ftp")}, ir.PathMatch{}, "scheme \"ftp\""},
		{"scheme upper", &ir.Redirect{Scheme: ptr("HTTPS")}, ir.PathMatch{}, "scheme"},
		{"port 0", &ir.Redirect{Port: ptr(0)}, ir.PathMatch{}, "out of range"},
		{"port 65536", &ir.Redirect{Port: ptr(65536)}, ir.PathMatch{}, "out of range"},
		{"bad hostname", &ir.Redirect{Hostname: ptr("a/b")}, ir.PathMatch{}, "invalid hostname"},
		{"prefix with exact", &ir.Redirect{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/x"}}, ir.PathMatch{Type: ir.PathExact, Value: "/a"}, "requires a PathPrefix"},
		{"bad full path", &ir.Redirect{Path: &ir.PathModifier{Type: ir.ReplaceFullPath, Value: "x"}}, ir.PathMatch{}, "must begin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd, err := New(tt.rd, tt.match)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, %v; want error containing %q", rd, err, tt.want)
			}
		})
	}
}

func newBench(tb testing.TB) (*Redirect, *http.Request) {
	rd, err := New(&ir.Redirect{
		Scheme: ptr("https"),
		Path:   &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/v2"},
	}, prefix("/api/v1"))
	if err != nil {
		tb.Fatal(err)
	}
	in := &http.Request{Host: "example.com:8080", URL: &url.URL{Path: "/api/v1/items/42", RawQuery: "x=1"}}
	return rd, in
}

func BenchmarkResponse(b *testing.B) {
	rd, in := newBench(b)
	b.ReportAllocs()
	for b.Loop() {
		rd.Response(in, "http", 8080)
	}
}

// TestResponseAllocs is the allocation budget: only the Location string.
func TestResponseAllocs(t *testing.T) {
	rd, in := newBench(t)
	if got := testing.AllocsPerRun(100, func() { rd.Response(in, "http", 8080) }); got > 1 {
		t.Errorf("Response allocates %v times, want at most 1", got)
	}
}
