package rewrite

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"causeway.dev/causeway/internal/ir"
)

func ptr[T any](v T) *T { return &v }

// Every row of the HTTPPathModifier ReplacePrefixMatch table, then edges.
func TestReplacePrefix(t *testing.T) {
	tests := []struct{ path, prefix, repl, want string }{
		// Gateway API v1.6.3 HTTPPathModifier table.
		{"/foo/bar", "/foo", "/xyz", "/xyz/bar"},
		{"/foo/bar", "/foo", "/xyz/", "/xyz/bar"},
		{"/foo/bar", "/foo/", "/xyz", "/xyz/bar"},
		{"/foo/bar", "/foo/", "/xyz/", "/xyz/bar"},
		{"/foo", "/foo", "/xyz", "/xyz"},
		{"/foo/", "/foo", "/xyz", "/xyz/"},
		{"/foo/bar", "/foo", "", "/bar"},
		{"/foo/", "/foo", "", "/"},
		{"/foo", "/foo", "", "/"},
		{"/foo/", "/foo", "/", "/"},
		{"/foo", "/foo", "/", "/"},
		// Conformance httproute-rewrite-path and httproute-redirect-path.
		{"/prefix/one/two", "/prefix/one", "/one", "/one/two"},
		{"/strip-prefix/three", "/strip-prefix", "/", "/three"},
		{"/strip-prefix", "/strip-prefix", "/", "/"},
		{"/prefix/rewrite-path-and-modify-headers/one", "/prefix/rewrite-path-and-modify-headers", "/prefix", "/prefix/one"},
		{"/original-prefix/lemon", "/original-prefix", "/replacement-prefix", "/replacement-prefix/lemon"},
		{"/path-and-host", "/path-and-host", "/replacement-prefix", "/replacement-prefix"},
		// The prefix "/" matches everything.
		{"/foo/bar", "/", "/xyz", "/xyz/foo/bar"},
		{"/", "/", "/xyz", "/xyz/"},
		{"/", "/", "", "/"},
		{"/foo", "/", "/", "/foo"},
		// Element-wise: "/foo" is not a prefix of "/foobar".
		{"/foobar", "/foo", "/xyz", "/foobar"},
		{"/bar", "/foo", "/xyz", "/bar"},
		// Deeper paths and several trailing slashes.
		{"/a/b/c/d", "/a/b", "/x/y", "/x/y/c/d"},
		{"/a/b/", "/a//", "/x//", "/x/b/"},
		// Defensive: the result is always absolute.
		{"/foo/bar", "/foo", "xyz", "/xyz/bar"},
		{"foo", "/foo", "/xyz", "/foo"},
		{"", "/", "/xyz", "/"},
	}
	for _, tt := range tests {
		if got := ReplacePrefix(tt.path, tt.prefix, tt.repl); got != tt.want {
			t.Errorf("ReplacePrefix(%q, %q, %q) = %q, want %q", tt.path, tt.prefix, tt.repl, got, tt.want)
		}
	}
}

func FuzzReplacePrefix(f *testing.F) {
	f.Add("/foo/bar", "/foo", "/xyz")
	f.Add("/foo/", "/foo/", "")
	f.Add("/", "/", "/")
	f.Add("", "", "")
	f.Add("//a", "/", "a/")
	f.Fuzz(func(t *testing.T, path, prefix, repl string) {
		got := ReplacePrefix(path, prefix, repl)
		if !strings.HasPrefix(got, "/") {
			t.Fatalf("ReplacePrefix(%q, %q, %q) = %q: not absolute", path, prefix, repl, got)
		}
		// A path that does not start with the prefix element-wise is kept.
		p := strings.TrimRight(prefix, "/")
		if strings.HasPrefix(path, "/") && !(path == p || strings.HasPrefix(path, p+"/")) && got != path {
			t.Fatalf("ReplacePrefix(%q, %q, %q) = %q: changed a path outside the prefix", path, prefix, repl, got)
		}
		// A trailing slash of a rewritten path survives.
		if strings.HasPrefix(path, p+"/") && strings.HasSuffix(path, "/") && !strings.HasSuffix(got, "/") {
			t.Fatalf("ReplacePrefix(%q, %q, %q) = %q: lost the trailing slash", path, prefix, repl, got)
		}
	})
}

func req(t *testing.T, target string) *http.Request {
	t.Helper()
	u, err := url.ParseRequestURI(target)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Request{Host: "rewrite.example", URL: u, Header: http.Header{}}
}

func TestApply(t *testing.T) {
	prefix := func(v string) ir.PathMatch { return ir.PathMatch{Type: ir.PathPrefix, Value: v} }
	full := func(v string) *ir.PathModifier { return &ir.PathModifier{Type: ir.ReplaceFullPath, Value: v} }
	repl := func(v string) *ir.PathModifier { return &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: v} }
	tests := []struct {
		name     string
		rw       *ir.Rewrite
		match    ir.PathMatch
		target   string
		wantHost string
		wantURI  string // URL.RequestURI: escaped path and query
		wantPath string // URL.Path, decoded
	}{
		// Conformance httproute-rewrite-host.
		{"host", &ir.Rewrite{Hostname: ptr("one.example.org")}, prefix("/one"), "/one", "one.example.org", "/one", "/one"},
		{"host only keeps path and query", &ir.Rewrite{Hostname: ptr("example.org")}, prefix("/"), "/two?a=1", "example.org", "/two?a=1", "/two"},
		// Conformance httproute-rewrite-path.
		{"prefix", &ir.Rewrite{Path: repl("/one")}, prefix("/prefix/one"), "/prefix/one/two", "rewrite.example", "/one/two", "/one/two"},
		{"strip prefix", &ir.Rewrite{Path: repl("/")}, prefix("/strip-prefix"), "/strip-prefix/three", "rewrite.example", "/three", "/three"},
		{"strip whole path", &ir.Rewrite{Path: repl("/")}, prefix("/strip-prefix"), "/strip-prefix", "rewrite.example", "/", "/"},
		{"full", &ir.Rewrite{Path: full("/one")}, prefix("/full/one"), "/full/one/two", "rewrite.example", "/one", "/one"},
		{"full with headers route", &ir.Rewrite{Path: full("/test")}, prefix("/full/rewrite-path-and-modify-headers"), "/full/rewrite-path-and-modify-headers/test", "rewrite.example", "/test", "/test"},
		{"prefix with headers route", &ir.Rewrite{Path: repl("/prefix")}, prefix("/prefix/rewrite-path-and-modify-headers"), "/prefix/rewrite-path-and-modify-headers/one", "rewrite.example", "/prefix/one", "/prefix/one"},
		// Query and encoding.
		{"query kept", &ir.Rewrite{Path: repl("/new")}, prefix("/old"), "/old/x?q=1&r=%20", "rewrite.example", "/new/x?q=1&r=%20", "/new/x"},
		{"full path keeps query", &ir.Rewrite{Path: full("/z")}, prefix("/"), "/a/b?q", "rewrite.example", "/z?q", "/z"},
		{"encoded slash stays encoded", &ir.Rewrite{Path: repl("/new")}, prefix("/old"), "/old/a%2Fb", "rewrite.example", "/new/a%2Fb", "/new/a/b"},
		{"escaped space", &ir.Rewrite{Path: repl("/new")}, prefix("/old"), "/old/a%20b", "rewrite.example", "/new/a%20b", "/new/a b"},
		{"escaped prefix of unreserved", &ir.Rewrite{Path: repl("/new")}, prefix("/%7Eold"), "/~old/x", "rewrite.example", "/new/x", "/new/x"},
		{"request not normal", &ir.Rewrite{Path: repl("/new")}, prefix("/old"), "/old//x/../y", "rewrite.example", "/new/y", "/new/y"},
		{"escaped replacement", &ir.Rewrite{Path: full("/a%20b")}, prefix("/"), "/x", "rewrite.example", "/a%20b", "/a b"},
		{"trailing slash kept", &ir.Rewrite{Path: repl("/xyz")}, prefix("/foo"), "/foo/", "rewrite.example", "/xyz/", "/xyz/"},
		{"empty match type is a prefix", &ir.Rewrite{Path: repl("/xyz")}, ir.PathMatch{}, "/foo", "rewrite.example", "/xyz/foo", "/xyz/foo"},
		{"nil rewrite", nil, prefix("/"), "/a?b", "rewrite.example", "/a?b", "/a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rw, err := New(tt.rw, tt.match)
			if err != nil {
				t.Fatal(err)
			}
			r := req(t, tt.target)
			rw.Apply(r)
			if r.Host != tt.wantHost {
				t.Errorf("Host = %q, want %q", r.Host, tt.wantHost)
			}
			if got := r.URL.RequestURI(); got != tt.wantURI {
				t.Errorf("RequestURI = %q, want %q", got, tt.wantURI)
			}
			if r.URL.Path != tt.wantPath {
				t.Errorf("Path = %q, want %q", r.URL.Path, tt.wantPath)
			}
			// What a client would send must parse back to the same URL.
			back, err := url.ParseRequestURI(r.URL.RequestURI())
			if err != nil || back.Path != r.URL.Path {
				t.Errorf("RequestURI %q parses to %v, %v; want Path %q", r.URL.RequestURI(), back, err, r.URL.Path)
			}
		})
	}
}

func TestNilApply(t *testing.T) {
	var rw *Rewrite
	r := req(t, "/a")
	rw.Apply(r)
	if r.URL.Path != "/a" || r.Host != "rewrite.example" {
		t.Errorf("nil Rewrite changed the request: %v %v", r.Host, r.URL)
	}
}

func TestNewErrors(t *testing.T) {
	prefix := ir.PathMatch{Type: ir.PathPrefix, Value: "/p"}
	tests := []struct {
		name  string
		rw    *ir.Rewrite
		match ir.PathMatch
		want  string
	}{
		{"prefix with exact match", &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/x"}}, ir.PathMatch{Type: ir.PathExact, Value: "/p"}, "requires a PathPrefix"},
		{"prefix with regex match", &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/x"}}, ir.PathMatch{Type: ir.PathRegex, Value: "/p.*"}, "requires a PathPrefix"},
		{"unknown type", &ir.Rewrite{Path: &ir.PathModifier{Type: "ReplaceSomething", Value: "/x"}}, prefix, "unsupported path modifier"},
		{"empty full path", &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplaceFullPath}}, prefix, "empty path"},
		{"relative full path", &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplaceFullPath, Value: "x"}}, prefix, "must begin"},
		{"relative prefix", &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "x"}}, prefix, "must begin"},
		{"query in path", &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplaceFullPath, Value: "/x?a=1"}}, prefix, "'?'"},
		{"fragment in path", &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplaceFullPath, Value: "/x#a"}}, prefix, "'#'"},
		{"control character", &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplaceFullPath, Value: "/x\r\n"}}, prefix, "control"},
		{"bad escape", &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/x%zz"}}, prefix, "escape"},
		{"escaped NUL", &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplaceFullPath, Value: "/x%00"}}, prefix, "NUL"},
		{"truncated escape", &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplaceFullPath, Value: "/x%2"}}, prefix, "escape"},
		{"bad match prefix", &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/x"}}, ir.PathMatch{Type: ir.PathPrefix, Value: "nope"}, "invalid path prefix"},
		{"empty hostname", &ir.Rewrite{Hostname: ptr("")}, prefix, "invalid hostname"},
		{"hostname with port", &ir.Rewrite{Hostname: ptr("a.example:80")}, prefix, "invalid hostname"},
		{"hostname with CRLF", &ir.Rewrite{Hostname: ptr("a\r\nb")}, prefix, "invalid hostname"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rw, err := New(tt.rw, tt.match)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, %v; want error containing %q", rw, err, tt.want)
			}
		})
	}
	_, err := New(&ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/x"}}, ir.PathMatch{Type: ir.PathExact, Value: "/p"})
	if !errors.Is(err, ErrPrefixNeedsPrefixMatch) {
		t.Errorf("error %v is not ErrPrefixNeedsPrefixMatch", err)
	}
}

func BenchmarkApply(b *testing.B) {
	for _, bc := range []struct {
		name string
		rw   *ir.Rewrite
	}{
		{"prefix", &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/v2"}}},
		{"full", &ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplaceFullPath, Value: "/v2/items"}}},
		{"host", &ir.Rewrite{Hostname: ptr("backend.internal")}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rw, err := New(bc.rw, ir.PathMatch{Type: ir.PathPrefix, Value: "/api/v1"})
			if err != nil {
				b.Fatal(err)
			}
			u := &url.URL{Path: "/api/v1/items/42", RawQuery: "x=1"}
			r := &http.Request{Host: "example.com", URL: u}
			b.ReportAllocs()
			for b.Loop() {
				u.Path, u.RawPath, r.Host = "/api/v1/items/42", "", "example.com"
				rw.Apply(r)
			}
		})
	}
}

// TestApplyAllocs is the allocation budget: a prefix rewrite builds one
// string; a full-path or host rewrite allocates nothing.
func TestApplyAllocs(t *testing.T) {
	for _, tc := range []struct {
		rw   *ir.Rewrite
		want float64
	}{
		{&ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/v2"}}, 1},
		{&ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/"}}, 0},
		{&ir.Rewrite{Path: &ir.PathModifier{Type: ir.ReplaceFullPath, Value: "/v2/items"}}, 0},
		{&ir.Rewrite{Hostname: ptr("backend.internal")}, 0},
	} {
		rw, err := New(tc.rw, ir.PathMatch{Type: ir.PathPrefix, Value: "/api/v1"})
		if err != nil {
			t.Fatal(err)
		}
		u := &url.URL{Path: "/api/v1/items/42"}
		r := &http.Request{Host: "example.com", URL: u}
		got := testing.AllocsPerRun(100, func() {
			u.Path, u.RawPath = "/api/v1/items/42", ""
			rw.Apply(r)
		})
		if got > tc.want {
			t.Errorf("%+v: %v allocs per Apply, want at most %v", tc.rw, got, tc.want)
		}
	}
}

func TestPathParts(t *testing.T) {
	mustCompile := func(m *ir.PathModifier, match ir.PathMatch) Path {
		t.Helper()
		p, err := CompilePath(m, match)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		p    Path
		esc  string
		want string
	}{
		{"zero keeps", Path{}, "/a%2Fb", "/a%2Fb"},
		{"zero keeps empty", Path{}, "", ""},
		{"full", mustCompile(&ir.PathModifier{Type: ir.ReplaceFullPath, Value: "/f"}, ir.PathMatch{}), "/a", "/f"},
		{"prefix", mustCompile(&ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/n"}, ir.PathMatch{Type: ir.PathPrefix, Value: "/o"}), "/o/a", "/n/a"},
		{"prefix to root", mustCompile(&ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: ""}, ir.PathMatch{Type: ir.PathPrefix, Value: "/o"}), "/o", "/"},
		{"prefix not matching", mustCompile(&ir.PathModifier{Type: ir.ReplacePrefixMatch, Value: "/n"}, ir.PathMatch{Type: ir.PathPrefix, Value: "/o"}), "/other", "/other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head, tail := tt.p.Parts(tt.esc)
			if head+tail != tt.want {
				t.Errorf("Parts(%q) = %q + %q, want %q", tt.esc, head, tail, tt.want)
			}
		})
	}
}
