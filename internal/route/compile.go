package route

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"regexp/syntax"
	"strings"

	"causeway.dev/causeway/internal/ir"
)

// Compile builds a table for one listener's virtual hosts
// (ir.Listener.VirtualHosts, already in precedence order; when two share a
// domain the first wins). build is called once per route, in order, to
// attach the caller's compiled handler; an error from build, an invalid
// regular expression or path, or an unknown match type fails Compile with an
// error naming the route.
//
// Domains are compared case-insensitively (ASCII) without a trailing dot;
// "" is taken as "*". Exact and PathPrefix values are normalised with
// NormalizePath, as request paths are, so "/%7Ea" matches "/~a"; a trailing
// "/" of a prefix is ignored. Header names are canonicalised. For headers
// and query parameters named twice in one Match, only the first entry
// counts, as Gateway API requires. Header values sent several times are
// joined with ","; query names and values are decoded as url.ParseQuery
// decodes them ("+" is a space) and the first value counts. Regular
// expressions are Go RE2 and must match the whole value.
func Compile[T any](vhosts []*ir.VirtualHost, build func(vh *ir.VirtualHost, r *ir.Route) (T, error)) (*Table[T], error) {
	t := &Table[T]{any: -1}
	var exact, wild []string // keys, in the order of t.hosts
	var exactIdx, wildIdx []int32
	seen := map[string]bool{}
	for _, vh := range vhosts {
		if vh == nil {
			continue
		}
		c, err := compileHost(vh, build)
		if err != nil {
			return nil, err
		}
		d := strings.TrimSuffix(asciiLower(vh.Domain), ".")
		if d == "" {
			d = "*"
		}
		switch {
		case d == "*":
		case strings.HasPrefix(d, "*."):
			if strings.Contains(d[1:], "*") || len(d) == 2 {
				return nil, fmt.Errorf("virtual host %q: invalid wildcard domain", vh.Domain)
			}
		case strings.Contains(d, "*"):
			return nil, fmt.Errorf("virtual host %q: invalid domain", vh.Domain)
		}
		if seen[d] {
			continue // shadowed by an earlier virtual host of the same domain
		}
		seen[d] = true
		idx := int32(len(t.hosts))
		t.hosts = append(t.hosts, *c)
		switch {
		case d == "*":
			t.any = idx
		case d[0] == '*':
			wild, wildIdx = append(wild, d[1:]), append(wildIdx, idx)
		default:
			exact, exactIdx = append(exact, d), append(exactIdx, idx)
		}
	}
	t.exact = newHostTable(exact, exactIdx)
	t.wild = newHostTable(wild, wildIdx)
	return t, nil
}

func compileHost[T any](vh *ir.VirtualHost, build func(vh *ir.VirtualHost, r *ir.Route) (T, error)) (*vhost[T], error) {
	c := &vhost[T]{entries: make([]entry[T], 0, len(vh.Routes))}
	paths := &builder{}
	for _, r := range vh.Routes {
		if r == nil {
			continue
		}
		i := int32(len(c.entries))
		cd, err := compileRoute(c, paths, r, i)
		if err != nil {
			return nil, fmt.Errorf("route %s (%s): %w", r.Name, r.Origin, err)
		}
		v, err := build(vh, r)
		if err != nil {
			return nil, fmt.Errorf("route %s (%s): %w", r.Name, r.Origin, err)
		}
		c.entries = append(c.entries, entry[T]{cond: cd, val: v})
	}
	c.paths = paths.freeze()
	return c, nil
}

// compileRoute compiles r's conditions and enters position i in c's indexes.
func compileRoute[T any](c *vhost[T], paths *builder, r *ir.Route, i int32) (cond, error) {
	m := &r.Match
	cd := cond{method: m.Method}
	var more moreCond
	var err error
	if more.headers, err = compileValues(m.Headers, http.CanonicalHeaderKey); err != nil {
		return cond{}, fmt.Errorf("header match: %w", err)
	}
	if more.query, err = compileValues(m.Query, func(s string) string { return s }); err != nil {
		return cond{}, fmt.Errorf("query match: %w", err)
	}
	if more.headers != nil || more.query != nil {
		cd.more = &more
	}
	switch m.Path.Type {
	case ir.PathExact:
		p, ok := NormalizePath(m.Path.Value)
		if !ok {
			return cond{}, fmt.Errorf("invalid exact path %q", m.Path.Value)
		}
		if p == "/" {
			paths.exactSlash = append(paths.exactSlash, i)
		} else if n := paths.at(strings.TrimSuffix(p, "/")); strings.HasSuffix(p, "/") {
			n.exactSlash = append(n.exactSlash, i)
		} else {
			n.exact = append(n.exact, i)
		}
	case ir.PathPrefix, "":
		v := m.Path.Value
		if v == "" {
			v = "/"
		}
		p, ok := NormalizePath(v)
		if !ok {
			return cond{}, fmt.Errorf("invalid path prefix %q", m.Path.Value)
		}
		n := paths
		if p != "/" {
			n = n.at(strings.TrimSuffix(p, "/"))
		}
		n.prefix = append(n.prefix, i)
	case ir.PathRegex:
		if cd.pathRe, err = compileRegex(m.Path.Value); err != nil {
			return cond{}, fmt.Errorf("path regex: %w", err)
		}
		c.regex = append(c.regex, i)
	default:
		return cond{}, fmt.Errorf("unknown path match type %q", m.Path.Type)
	}
	return cd, nil
}

// compileValues compiles header or query matches, keeping only the first
// entry of each name.
func compileValues(ms []ir.StringMatch, canon func(string) string) ([]valueMatch, error) {
	var out []valueMatch
next:
	for _, m := range ms {
		name := canon(m.Name)
		if name == "" {
			return nil, errors.New("empty name")
		}
		for _, o := range out {
			if o.name == name {
				continue next
			}
		}
		vm := valueMatch{name: name, value: m.Value}
		switch m.Type {
		case ir.MatchExact, "":
		case ir.MatchRegex:
			re, err := compileRegex(m.Value)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			vm.re = re
		default:
			return nil, fmt.Errorf("%s: unknown match type %q", name, m.Type)
		}
		out = append(out, vm)
	}
	return out, nil
}

// compileRegex anchors expr so that it must match the whole value. expr
// is parsed alone first: "a)|(b" must not escape the anchoring group.
func compileRegex(expr string) (*regexp.Regexp, error) {
	if _, err := syntax.Parse(expr, syntax.Perl); err != nil {
		return nil, err
	}
	return regexp.Compile(`\A(?:` + expr + `)\z`)
}

// asciiLower lower-cases ASCII letters only: host names are ASCII (IDNs
// travel as punycode), and the request side folds only ASCII too.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}
