package cors

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"causeway.dev/causeway/internal/ir"
	"github.com/google/go-cmp/cmp"
)

func mustNew(t testing.TB, c *ir.CORS) *Policy {
	t.Helper()
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewNil(t *testing.T) {
	if p, err := New(nil); p != nil || err != nil {
		t.Errorf("New(nil) = %v, %v; want nil, nil", p, err)
	}
}

func TestNewInvalid(t *testing.T) {
	for name, c := range map[string]ir.CORS{
		"no scheme":       {AllowOrigins: []string{"www.foo.com"}},
		"ftp scheme":      {AllowOrigins: []string{"ftp://www.foo.com"}},
		"path":            {AllowOrigins: []string{"https://www.foo.com/"}},
		"port 0":          {AllowOrigins: []string{"https://www.foo.com:0"}},
		"port too large":  {AllowOrigins: []string{"https://www.foo.com:65536"}},
		"empty port":      {AllowOrigins: []string{"https://www.foo.com:"}},
		"empty label":     {AllowOrigins: []string{"https://www..foo.com"}},
		"star inside":     {AllowOrigins: []string{"https://www.*.com"}},
		"userinfo":        {AllowOrigins: []string{"https://u@foo.com"}},
		"method with sp":  {AllowMethods: []string{"GE T"}},
		"header with col": {AllowHeaders: []string{"x:y"}},
		"expose empty":    {ExposeHeaders: []string{""}},
		"max age":         {MaxAge: -1},
	} {
		t.Run(name, func(t *testing.T) {
			if p, err := New(&c); err == nil {
				t.Errorf("New(%+v) = %+v, want an error", c, p)
			}
		})
	}
}

// TestAllows follows allowOrigins' doc comment in Gateway API
// (HTTPCORSFilter): exact origins with default ports, and a "*" that is a
// greedy match to the left of its position, dots included.
func TestAllows(t *testing.T) {
	tests := []struct {
		name    string
		origins []string
		cred    bool
		yes, no []string
	}{{
		name:    "exact",
		origins: []string{"https://www.foo.com", "http://api.example.com:8080"},
		yes: []string{"https://www.foo.com", "https://www.foo.com:443", "HTTPS://WWW.Foo.com",
			"http://api.example.com:8080"},
		no: []string{"http://www.foo.com", "https://www.foo.com:8443", "https://foo.com",
			"https://www.foo.com.evil.com", "http://api.example.com", "https://api.example.com:8080",
			"https://www.foo.com/", "https://www.foo.com:", "www.foo.com", "", "null"},
	}, {
		name:    "explicit default port",
		origins: []string{"https://www.foo.com:443", "http://a.example:80"},
		yes:     []string{"https://www.foo.com", "https://www.foo.com:443", "http://a.example", "http://a.example:080"},
		no:      []string{"https://www.foo.com:80", "http://a.example:443"},
	}, {
		name:    "left-greedy wildcard",
		origins: []string{"https://*.bar.com"},
		yes:     []string{"https://www.bar.com", "https://xpto.www.bar.com", "https://a.b.c.bar.com", "https://X.BAR.COM:443"},
		no: []string{"https://bar.com", "https://foobar.com", "https://.bar.com", "http://www.bar.com",
			"https://www.bar.com:8443", "https://x..bar.com", "https://www.bar.com.evil", "https://a/b.bar.com"},
	}, {
		name:    "wildcard with port",
		origins: []string{"http://*.local:3000"},
		yes:     []string{"http://app.local:3000"},
		no:      []string{"http://app.local", "http://app.local:3001"},
	}, {
		name:    "any host of a scheme",
		origins: []string{"https://*"},
		yes:     []string{"https://a", "https://a.b.c", "https://127.0.0.1"},
		no:      []string{"http://a", "https://a:8443", "https://[::1]"},
	}, {
		name:    "any origin",
		origins: []string{"*"},
		yes:     []string{"https://foobar.com", "https://foobar.com:12345", "chrome-extension://abc", "null"},
		no:      []string{""},
	}, {
		name:    "any origin with credentials",
		origins: []string{"*"},
		cred:    true,
		yes:     []string{"https://other.foo.com"},
		no:      []string{"null", ""},
	}, {
		name: "none",
		no:   []string{"https://www.foo.com", "null"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustNew(t, &ir.CORS{AllowOrigins: tt.origins, AllowCredentials: tt.cred})
			for _, o := range tt.yes {
				if !p.Allows(o) {
					t.Errorf("Allows(%q) = false, want true", o)
				}
			}
			for _, o := range tt.no {
				if p.Allows(o) {
					t.Errorf("Allows(%q) = true, want false", o)
				}
			}
		})
	}
}

func TestIsPreflight(t *testing.T) {
	for _, tc := range []struct {
		method string
		hdr    http.Header
		want   bool
	}{
		{"OPTIONS", http.Header{"Origin": {"https://a.com"}, "Access-Control-Request-Method": {"GET"}}, true},
		{"OPTIONS", http.Header{"Origin": {"https://a.com"}}, false},
		{"OPTIONS", http.Header{"Access-Control-Request-Method": {"GET"}}, false},
		{"GET", http.Header{"Origin": {"https://a.com"}, "Access-Control-Request-Method": {"GET"}}, false},
	} {
		r := &http.Request{Method: tc.method, Header: tc.hdr}
		if got := IsPreflight(r); got != tc.want {
			t.Errorf("IsPreflight(%s %v) = %v, want %v", tc.method, tc.hdr, got, tc.want)
		}
	}
}

// conformance1 is the first route of the HTTPRouteCORS conformance test.
var conformance1 = ir.CORS{
	AllowOrigins:     []string{"https://www.foo.com", "https://*.bar.com"},
	AllowMethods:     []string{"GET", "OPTIONS"},
	AllowHeaders:     []string{"x-header-1", "x-header-2"},
	ExposeHeaders:    []string{"x-header-3", "x-header-4"},
	AllowCredentials: true,
	MaxAge:           3600,
}

func TestPreflight(t *testing.T) {
	tests := []struct {
		name string
		cfg  ir.CORS
		req  http.Header
		want http.Header
	}{{
		name: "allowed lists",
		cfg:  conformance1,
		req: http.Header{"Origin": {"https://xpto.www.bar.com"}, "Access-Control-Request-Method": {"GET"},
			"Access-Control-Request-Headers": {"x-header-1, x-header-2"}},
		want: http.Header{
			"Vary":                             {"Origin"},
			"Access-Control-Allow-Origin":      {"https://xpto.www.bar.com"},
			"Access-Control-Allow-Credentials": {"true"},
			"Access-Control-Allow-Methods":     {"GET, OPTIONS"},
			"Access-Control-Allow-Headers":     {"x-header-1, x-header-2"},
			"Access-Control-Expose-Headers":    {"x-header-3, x-header-4"},
			"Access-Control-Max-Age":           {"3600"},
		},
	}, {
		name: "origin not allowed",
		cfg:  conformance1,
		req:  http.Header{"Origin": {"https://foobar.com"}, "Access-Control-Request-Method": {"GET"}},
		want: http.Header{"Vary": {"Origin"}},
	}, {
		name: "wildcard method, no credentials, default max age",
		cfg:  ir.CORS{AllowOrigins: []string{"https://www.foo.com"}, AllowMethods: []string{"*"}},
		req:  http.Header{"Origin": {"https://www.foo.com"}, "Access-Control-Request-Method": {"POST"}},
		want: http.Header{
			"Vary":                         {"Origin, Access-Control-Request-Method"},
			"Access-Control-Allow-Origin":  {"https://www.foo.com"},
			"Access-Control-Allow-Methods": {"POST"},
			"Access-Control-Max-Age":       {"5"},
		},
	}, {
		name: "any origin without credentials answers star",
		cfg:  ir.CORS{AllowOrigins: []string{"*"}, AllowMethods: []string{"PUT"}},
		req:  http.Header{"Origin": {"https://foobar.com:12345"}, "Access-Control-Request-Method": {"PUT"}},
		want: http.Header{
			"Access-Control-Allow-Origin":  {"*"},
			"Access-Control-Allow-Methods": {"PUT"},
			"Access-Control-Max-Age":       {"5"},
		},
	}, {
		name: "wildcards with credentials echo",
		cfg: ir.CORS{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"},
			ExposeHeaders: []string{"*"}, AllowCredentials: true},
		req: http.Header{"Origin": {"https://other.foo.com"}, "Access-Control-Request-Method": {"PUT"},
			"Access-Control-Request-Headers": {"x-header-1", " x-header-2 "}},
		want: http.Header{
			"Vary":                             {"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"},
			"Access-Control-Allow-Origin":      {"https://other.foo.com"},
			"Access-Control-Allow-Credentials": {"true"},
			"Access-Control-Allow-Methods":     {"PUT"},
			"Access-Control-Allow-Headers":     {"x-header-1, x-header-2"},
			"Access-Control-Max-Age":           {"5"},
		},
	}, {
		name: "wildcard headers without request headers",
		cfg:  ir.CORS{AllowOrigins: []string{"*"}, AllowHeaders: []string{"*"}, ExposeHeaders: []string{"*"}},
		req:  http.Header{"Origin": {"https://a.com"}, "Access-Control-Request-Method": {"GET"}},
		want: http.Header{
			"Vary":                          {"Access-Control-Request-Headers"},
			"Access-Control-Allow-Origin":   {"*"},
			"Access-Control-Expose-Headers": {"*"},
			"Access-Control-Max-Age":        {"5"},
		},
	}, {
		name: "invalid requested method is not echoed",
		cfg:  ir.CORS{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}},
		req:  http.Header{"Origin": {"https://a.com"}, "Access-Control-Request-Method": {"G T"}},
		want: http.Header{
			"Vary":                        {"Access-Control-Request-Method"},
			"Access-Control-Allow-Origin": {"*"},
			"Access-Control-Max-Age":      {"5"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustNew(t, &tt.cfg)
			h := http.Header{}
			p.Preflight(h, tt.req)
			if d := cmp.Diff(tt.want, h); d != "" {
				t.Errorf("preflight headers (-want +got):\n%s", d)
			}
		})
	}
}

func TestDecorate(t *testing.T) {
	tests := []struct {
		name   string
		cfg    ir.CORS
		origin string
		resp   http.Header
		want   http.Header
	}{{
		name:   "no origin: only Vary",
		cfg:    conformance1,
		resp:   http.Header{"Content-Type": {"text/plain"}},
		want:   http.Header{"Content-Type": {"text/plain"}, "Vary": {"Origin"}},
		origin: "",
	}, {
		name:   "allowed with credentials",
		cfg:    conformance1,
		origin: "https://www.bar.com",
		resp:   http.Header{"Vary": {"Accept-Encoding"}, "Access-Control-Allow-Origin": {"https://backend.example"}},
		want: http.Header{
			"Vary":                             {"Accept-Encoding", "Origin"},
			"Access-Control-Allow-Origin":      {"https://www.bar.com"},
			"Access-Control-Allow-Credentials": {"true"},
			"Access-Control-Expose-Headers":    {"x-header-3, x-header-4"},
		},
	}, {
		name:   "not allowed: backend headers untouched",
		cfg:    conformance1,
		origin: "https://foobar.com",
		resp:   http.Header{"Vary": {"accept-encoding, origin"}},
		want:   http.Header{"Vary": {"accept-encoding, origin"}},
	}, {
		name:   "Vary star is kept",
		cfg:    conformance1,
		origin: "https://www.foo.com",
		resp:   http.Header{"Vary": {"*"}},
		want: http.Header{
			"Vary":                             {"*"},
			"Access-Control-Allow-Origin":      {"https://www.foo.com"},
			"Access-Control-Allow-Credentials": {"true"},
			"Access-Control-Expose-Headers":    {"x-header-3, x-header-4"},
		},
	}, {
		name:   "static any origin, even without Origin",
		cfg:    ir.CORS{AllowOrigins: []string{"*"}, ExposeHeaders: []string{"x-a"}},
		origin: "",
		resp:   http.Header{},
		want:   http.Header{"Access-Control-Allow-Origin": {"*"}, "Access-Control-Expose-Headers": {"x-a"}},
	}, {
		name:   "expose star with credentials names the headers",
		cfg:    ir.CORS{AllowOrigins: []string{"*"}, ExposeHeaders: []string{"*"}, AllowCredentials: true},
		origin: "https://a.com",
		resp:   http.Header{"X-B": {"1"}, "X-A": {"2"}, "Content-Type": {"x"}, "Set-Cookie": {"c=1"}},
		want: http.Header{
			"X-B": {"1"}, "X-A": {"2"}, "Content-Type": {"x"}, "Set-Cookie": {"c=1"},
			"Vary":                             {"Origin"},
			"Access-Control-Allow-Origin":      {"https://a.com"},
			"Access-Control-Allow-Credentials": {"true"},
			"Access-Control-Expose-Headers":    {"X-A, X-B"},
		},
	}, {
		name:   "expose star without credentials",
		cfg:    ir.CORS{AllowOrigins: []string{"https://a.com"}, ExposeHeaders: []string{"*"}},
		origin: "https://a.com",
		resp:   http.Header{},
		want: http.Header{
			"Vary":                          {"Origin"},
			"Access-Control-Allow-Origin":   {"https://a.com"},
			"Access-Control-Expose-Headers": {"*"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustNew(t, &tt.cfg)
			p.Decorate(tt.resp, tt.origin)
			if d := cmp.Diff(tt.want, tt.resp); d != "" {
				t.Errorf("response headers (-want +got):\n%s", d)
			}
		})
	}
}

// TestSharedValuesNotClobbered: an append by a later filter to a value
// slice Decorate installed must not change the next response's value.
func TestSharedValuesNotClobbered(t *testing.T) {
	p := mustNew(t, &conformance1)
	h1 := http.Header{}
	p.Decorate(h1, "https://www.foo.com")
	h1["Vary"] = append(h1["Vary"], "Cookie")
	h1["Access-Control-Expose-Headers"] = append(h1["Access-Control-Expose-Headers"], "x-more")
	h2 := http.Header{}
	p.Decorate(h2, "https://www.foo.com")
	if got := h2["Vary"]; len(got) != 1 || got[0] != "Origin" {
		t.Errorf("Vary = %q, want [Origin]", got)
	}
	if got := h2["Access-Control-Expose-Headers"]; len(got) != 1 {
		t.Errorf("Access-Control-Expose-Headers = %q, want one value", got)
	}
}

// TestAllocs is the allocation budget of the hot path: nothing for a
// request without Origin, one value slice for an allowed origin.
func TestAllocs(t *testing.T) {
	p := mustNew(t, &conformance1)
	h := http.Header{"Content-Type": {"text/plain"}}
	if n := testing.AllocsPerRun(100, func() {
		p.Decorate(h, Origin(http.Header{}))
		delete(h, "Vary")
	}); n != 0 {
		t.Errorf("Decorate without Origin allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		p.Decorate(h, "https://xpto.www.bar.com")
	}); n > 1 {
		t.Errorf("Decorate with an allowed Origin allocates %v times, want at most 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { p.Allows("https://a.b.bar.com:443") }); n != 0 {
		t.Errorf("Allows allocates %v times, want 0", n)
	}
}

func BenchmarkDecorate(b *testing.B) {
	p := mustNew(b, &conformance1)
	for _, bc := range []struct{ name, origin string }{
		{"no-origin", ""},
		{"exact", "https://www.foo.com"},
		{"wildcard", "https://xpto.www.bar.com"},
		{"denied", "https://foobar.com"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"12"}}
			b.ReportAllocs()
			for b.Loop() {
				p.Decorate(h, bc.origin)
				delete(h, "Vary")
			}
		})
	}
}

func BenchmarkPreflight(b *testing.B) {
	p := mustNew(b, &conformance1)
	req := http.Header{"Origin": {"https://www.foo.com"}, "Access-Control-Request-Method": {"GET"},
		"Access-Control-Request-Headers": {"x-header-1, x-header-2"}}
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		p.Preflight(h, req)
	}
}

// refOrigin is an independent reading of a serialized http(s) origin for
// FuzzAllows: a regular expression instead of split's hand-written scan.
var refOrigin = regexp.MustCompile(`^(?i)(https?)://([a-z0-9-]+(?:\.[a-z0-9-]+)*)(?::([0-9]{1,5}))?$`)

// refAllows is the reference matcher for one allowed origin other than
// "*": same scheme, same port (defaults filled in), and a host equal to
// the pattern's or, for "*.suffix", one or more DNS labels before it.
func refAllows(pat, origin string) bool {
	pm := refOrigin.FindStringSubmatch(strings.Replace(pat, "://*", "://x", 1))
	om := refOrigin.FindStringSubmatch(origin)
	if pm == nil || om == nil {
		return false
	}
	port := func(scheme, p string) int {
		if p == "" {
			if strings.EqualFold(scheme, "http") {
				return 80
			}
			return 443
		}
		n, _ := strconv.Atoi(p)
		return n
	}
	op := port(om[1], om[3])
	if !strings.EqualFold(pm[1], om[1]) || port(pm[1], pm[3]) != op || op < 1 || op > 65535 {
		return false
	}
	host := strings.ToLower(om[2])
	i := strings.Index(pat, "://") + 3
	if pat[i] != '*' {
		return host == strings.ToLower(pm[2])
	}
	suffix := strings.ToLower(pm[2][1:]) // what followed the "*"
	return strings.HasSuffix(host, suffix) && len(host) > len(suffix) &&
		refLabels.MatchString(host[:len(host)-len(suffix)])
}

var refLabels = regexp.MustCompile(`^[a-z0-9-]+(\.[a-z0-9-]+)*$`)

// FuzzAllows compares the origin matcher with refAllows.
func FuzzAllows(f *testing.F) {
	patterns := []string{"https://www.foo.com", "https://*.bar.com", "http://*.local:3000",
		"http://a.example:80", "https://*", "https://x.y:8443"}
	for _, o := range []string{"https://www.foo.com", "https://www.foo.com:443", "https://xpto.www.bar.com",
		"https://bar.com", "http://app.local:3000", "https://x..bar.com", "https://[::1]:443", "null",
		"HTTPS://WWW.FOO.COM", "http://a.example:080", "https://x.y:8443", "https://:443", "https://a:"} {
		for i := range patterns {
			f.Add(o, uint8(i))
		}
	}
	policies := make([]*Policy, len(patterns))
	for i, pat := range patterns {
		policies[i] = mustNew(f, &ir.CORS{AllowOrigins: []string{pat}})
	}
	f.Fuzz(func(t *testing.T, origin string, which uint8) {
		i := int(which) % len(patterns)
		got := policies[i].Allows(origin)
		if want := refAllows(patterns[i], origin); got != want {
			t.Errorf("pattern %q: Allows(%q) = %v, reference says %v", patterns[i], origin, got, want)
		}
	})
}
