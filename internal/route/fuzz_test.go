package route

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"causeway.dev/causeway/internal/ir"
)

// Pools the fuzzer picks from, small so that routes and requests collide.
var (
	fuzzDomains = []string{"a.example.com", "*.example.com", "*.b.example.com", "*", "A.Example.COM.", "*.com", "b.example.com", "*.EXAMPLE.com"}
	fuzzPaths   = []string{"/", "/a", "/a/", "/a/b", "/b", "/a/b/c", "/%61", "/a/..", "//a", "/a%2Fb", "/a/b/", "/c/"}
	fuzzRegexes = []string{"/a.*", "/[ab]+", ".*", "/a/b|/c", "(/a)?/b", "/a/?", "[^/]*"}
	fuzzMethods = []string{"", "", "GET", "POST"}
	fuzzHNames  = []string{"X-A", "x-a", "X-B"}
	fuzzQNames  = []string{"a", "A", "b", "a b"}
	fuzzValues  = []string{"1", "2", "1,2", "", "x y", "%", "a+b"}
	fuzzValRes  = []string{"[12]", "1.*", "1|2", "[0-9]+", ".*", "x y", ","}
)

// fuzzConfig derives virtual hosts from bytes, routeBytes per route, so
// that mutations of one byte change one property of one route.
func fuzzConfig(b []byte) []*ir.VirtualHost {
	const routeBytes = 17
	var vhosts []*ir.VirtualHost
	byDomain := map[string]*ir.VirtualHost{}
	for n := 0; len(b) >= routeBytes && n < 64; n++ {
		c := b[:routeBytes]
		b = b[routeBytes:]
		pick := func(i int, pool []string) string { return pool[int(c[i])%len(pool)] }
		d := pick(0, fuzzDomains)
		vh := byDomain[d]
		if vh == nil {
			vh = &ir.VirtualHost{Domain: d}
			byDomain[d] = vh
			vhosts = append(vhosts, vh)
		}
		r := &ir.Route{Name: fmt.Sprintf("r%d", n)}
		switch c[1] % 3 {
		case 0:
			r.Match.Path = ir.PathMatch{Type: ir.PathExact, Value: pick(2, fuzzPaths)}
		case 1:
			r.Match.Path = ir.PathMatch{Type: ir.PathPrefix, Value: pick(2, fuzzPaths)}
		default:
			r.Match.Path = ir.PathMatch{Type: ir.PathRegex, Value: pick(2, fuzzRegexes)}
		}
		r.Match.Method = pick(3, fuzzMethods)
		// Counts 0, 1, 2, 0: half the routes have no header (query)
		// condition, so that several routes often hold at once.
		for i := 0; i < int(c[4]&3)%3; i++ {
			r.Match.Headers = append(r.Match.Headers, fuzzStringMatch(pick(5+3*i, fuzzHNames), c[6+3*i], c[7+3*i]))
		}
		for i := 0; i < int(c[4]>>2&3)%3; i++ {
			r.Match.Query = append(r.Match.Query, fuzzStringMatch(pick(11+3*i, fuzzQNames), c[12+3*i], c[13+3*i]))
		}
		vh.Routes = append(vh.Routes, r)
	}
	return vhosts
}

func fuzzStringMatch(name string, kind, v byte) ir.StringMatch {
	if kind%2 == 0 {
		return ir.StringMatch{Name: name, Type: ir.MatchExact, Value: fuzzValues[int(v)%len(fuzzValues)]}
	}
	return ir.StringMatch{Name: name, Type: ir.MatchRegex, Value: fuzzValRes[int(v)%len(fuzzValRes)]}
}

// refMatch is the reference: a plain linear reading of the rules, with no
// index, written apart from the implementation.
func refMatch(t *testing.T, vhosts []*ir.VirtualHost, req *Request) (string, bool) {
	vh := refHost(vhosts, req.Host)
	if vh == nil {
		return "", false
	}
	for _, r := range vh.Routes {
		if refRoute(t, r, req) {
			return r.Name, true
		}
	}
	return "", false
}

func refHost(vhosts []*ir.VirtualHost, host string) *ir.VirtualHost {
	h := host
	if strings.HasPrefix(h, "[") {
		if i := strings.Index(h, "]"); i >= 0 {
			h = h[:i+1]
		}
	} else if strings.Count(h, ":") == 1 {
		h = h[:strings.Index(h, ":")]
	}
	h = asciiLowerRef(strings.TrimSuffix(h, "."))
	var best *ir.VirtualHost
	bestLen := -1
	var star *ir.VirtualHost
	for _, vh := range vhosts {
		d := asciiLowerRef(strings.TrimSuffix(vh.Domain, "."))
		switch {
		case d == "*":
			if star == nil {
				star = vh
			}
		case strings.HasPrefix(d, "*."):
			if len(h) <= 254 && strings.HasSuffix(h, d[1:]) && len(h) > len(d)-1 && len(d) > bestLen && bestLen < 1000 {
				best, bestLen = vh, len(d)
			}
		case d == h:
			if bestLen < 1000 {
				best, bestLen = vh, 1000 // exact beats every wildcard
			}
		}
	}
	if best != nil {
		return best
	}
	return star
}

func asciiLowerRef(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 32
		}
		return r
	}, s)
}

func refRoute(t *testing.T, r *ir.Route, req *Request) bool {
	m := r.Match
	switch m.Path.Type {
	case ir.PathExact:
		v, _ := NormalizePath(m.Path.Value)
		if req.Path != v {
			return false
		}
	case ir.PathPrefix:
		v, _ := NormalizePath(m.Path.Value)
		v = strings.TrimSuffix(v, "/")
		if v != "" && req.Path != v && !strings.HasPrefix(req.Path, v+"/") {
			return false
		}
	case ir.PathRegex:
		if !refRegexp(m.Path.Value).MatchString(req.Path) {
			return false
		}
	}
	if m.Method != "" && m.Method != req.Method {
		return false
	}
	seen := map[string]bool{}
	for _, h := range m.Headers {
		name := http.CanonicalHeaderKey(h.Name)
		if seen[name] {
			continue
		}
		seen[name] = true
		vals, ok := req.Header[name]
		if !ok || len(vals) == 0 || !refValue(h, strings.Join(vals, ",")) {
			return false
		}
	}
	q, _ := url.ParseQuery(req.RawQuery)
	seen = map[string]bool{}
	for _, p := range m.Query {
		if seen[p.Name] {
			continue
		}
		seen[p.Name] = true
		vals, ok := q[p.Name]
		if !ok || !refValue(p, vals[0]) {
			return false
		}
	}
	return true
}

func refValue(m ir.StringMatch, v string) bool {
	if m.Type == ir.MatchRegex {
		return refRegexp(m.Value).MatchString(v)
	}
	return v == m.Value
}

// refRegexps caches the reference's regular expressions; fuzz workers are
// separate processes and call it from one goroutine.
var refRegexps = map[string]*regexp.Regexp{}

func refRegexp(expr string) *regexp.Regexp {
	re, ok := refRegexps[expr]
	if !ok {
		re = regexp.MustCompile("^(?:" + expr + ")$")
		refRegexps[expr] = re
	}
	return re
}

func FuzzMatch(f *testing.F) {
	route := func(domain, pathType, path, method, hq byte, rest ...byte) []byte {
		b := make([]byte, 17)
		copy(b, append([]byte{domain, pathType, path, method, hq}, rest...))
		return b
	}
	cat := func(rs ...[]byte) []byte {
		var out []byte
		for _, r := range rs {
			out = append(out, r...)
		}
		return append(out, 0) // the host selector: domain 0
	}
	// Exact after a prefix on the same path: the prefix must win.
	f.Add(cat(route(0, 1, 1, 0, 0), route(0, 0, 1, 0, 0)), "a.example.com", "/a", "GET", "", "")
	// A header route, a query route and a regex on one host.
	f.Add(cat(route(1, 2, 0, 2, 1, 0, 0, 0), route(1, 1, 3, 0, 4, 0, 0, 0, 0, 0, 0, 1, 1, 1), route(1, 0, 3, 0, 0)),
		"x.b.example.com:80", "/a/b", "POST", "a%20b=x+y&b=2", "x-a: 1\nx-a: 2")
	// Query names and values are decoded ("+" and "%20" are spaces).
	f.Add(cat(route(0, 1, 0, 0, 4, 0, 0, 0, 0, 0, 0, 3, 0, 4)), "a.example.com", "/", "", "a+b=x%20y", "")
	f.Add(cat(route(3, 1, 0, 0, 5, 2, 0, 3, 0, 0, 0, 1, 0, 5)), "[::1]:8080", "/", "", "A=%25", "X-B:")
	f.Add([]byte("some longer configuration bytes to make many routes, several of them, yes"), "Q.EXAMPLE.COM.", "/a/b/c", "GET", "b=1&b=2;&a=1", "X-B: ,")
	f.Fuzz(func(t *testing.T, cfg []byte, host, path, method, query, hdr string) {
		vhosts := fuzzConfig(cfg)
		tab, err := Compile(vhosts, names)
		if err != nil {
			t.Fatalf("Compile: %v", err)
		}
		header := http.Header{}
		for _, line := range strings.Split(hdr, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				header.Add(k, strings.TrimSpace(v))
			}
		}
		req := &Request{Method: method, RawQuery: query, Header: header}
		check := func(host, path string) {
			req.Host, req.Path = host, path
			got, ok := tab.Match(req)
			want, wantOK := refMatch(t, vhosts, req)
			if got != want || ok != wantOK {
				t.Fatalf("Match(%+v) = %q, %v; reference %q, %v", req, got, ok, want, wantOK)
			}
		}
		check(host, path)
		if p, ok := NormalizePath(path); ok {
			check(host, p)
		}
		// Also aim at the configured hosts and paths, which random
		// strings seldom hit: a concrete host for a domain of the pool,
		// and a pool path, alone or with the fuzzed path appended.
		sel := 0
		if len(cfg) > 0 {
			sel = int(cfg[len(cfg)-1])
		}
		h := strings.Replace(fuzzDomains[sel%len(fuzzDomains)], "*", "x.y", 1)
		for _, p := range fuzzPaths {
			check(h, p)
			if np, ok := NormalizePath(p + path); ok {
				check(h, np)
			}
		}
	})
}
