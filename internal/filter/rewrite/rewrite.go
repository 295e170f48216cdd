// Package rewrite implements the Gateway API URLRewrite filter: it changes
// the Host and the path of a request on its way to the backend.
//
// It sits in the proxy's per-route filter chain, after request header
// modification and before the request is sent upstream. The proxy builds a
// Rewrite once per route when a configuration arrives (New, which validates
// and does no I/O) and applies it to each outbound request (Rewrite.Apply).
// A Rewrite is immutable and safe for concurrent use.
//
// Paths are handled in their escaped form, normalised as the router
// normalises them (route.NormalizePath), so that the prefix replaced is
// exactly the prefix that matched and encoded separators ("%2F") stay
// encoded.
package rewrite

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/route"
)

// Rewrite is a compiled URL rewrite.
type Rewrite struct {
	host string // "" keeps the Host
	path Path   // zero Type keeps the path
}

// ErrPrefixNeedsPrefixMatch is returned by New (and redirect.New) when
// ReplacePrefixMatch is used with a match that is not a PathPrefix; Gateway
// API says the route is then not Accepted.
var ErrPrefixNeedsPrefixMatch = errors.New("ReplacePrefixMatch requires a PathPrefix match")

// New validates r and compiles it. match is the path match of the route,
// needed by ReplacePrefixMatch (ir.PathPrefix, or the empty type, which the
// router also treats as a prefix). A nil r gives a Rewrite that changes
// nothing.
func New(r *ir.Rewrite, match ir.PathMatch) (*Rewrite, error) {
	rw := &Rewrite{}
	if r == nil {
		return rw, nil
	}
	if r.Hostname != nil {
		if err := ValidateHost(*r.Hostname); err != nil {
			return nil, fmt.Errorf("rewrite hostname: %w", err)
		}
		rw.host = *r.Hostname
	}
	if r.Path == nil {
		return rw, nil
	}
	p, err := CompilePath(r.Path, match)
	if err != nil {
		return nil, fmt.Errorf("rewrite path: %w", err)
	}
	rw.path = p
	return rw, nil
}

// Apply rewrites the outbound request: out.Host, and out.URL.Path with a
// consistent out.URL.RawPath (the escaped form, so URL.EscapedPath gives
// exactly the rewritten path). The query is kept. A nil Rewrite changes
// nothing.
//
// A prefix rewrite of a path that does not begin with the prefix (which the
// router never lets through) leaves the path as it is.
func (r *Rewrite) Apply(out *http.Request) {
	if r == nil {
		return
	}
	if r.host != "" {
		out.Host = r.host
	}
	switch r.path.Type {
	case "":
	case ir.ReplaceFullPath:
		setPath(out.URL, r.path.full)
	default:
		if head, tail, ok := r.path.parts(out.URL.EscapedPath()); ok {
			setPath(out.URL, join(head, tail))
		}
	}
}

// setPath sets u's path from its escaped form esc. esc was validated (at New
// for configured values, by NormalizePath for request paths), so unescaping
// cannot fail; should it, the decoded path is left as is and only the
// escaped form is set, which URL.EscapedPath then ignores.
func setPath(u *url.URL, esc string) {
	if p, err := url.PathUnescape(esc); err == nil {
		u.Path = p
	}
	u.RawPath = esc
}

// ReplacePrefix implements Gateway API ReplacePrefixMatch: when path begins
// with prefix element-wise ("/foo" is a prefix of "/foo" and "/foo/bar",
// not of "/foobar"), that prefix is replaced by replacement. Trailing
// slashes of prefix and replacement are ignored and a trailing slash of
// path is kept, as the HTTPPathModifier table says:
//
//	path      prefix  replacement  result
//	/foo/bar  /foo    /xyz         /xyz/bar
//	/foo/bar  /foo/   /xyz/        /xyz/bar
//	/foo      /foo    /xyz         /xyz
//	/foo/     /foo    /xyz         /xyz/
//	/foo/bar  /foo    ""           /bar
//	/foo      /foo    /            /
//
// A path that does not begin with prefix is returned unchanged. The result
// always begins with "/": one is added if path or replacement lacks it.
// ReplacePrefix compares bytes; callers give path and prefix in the same
// (escaped, normalised) form.
func ReplacePrefix(path, prefix, replacement string) string {
	rest, ok := cut(path, strings.TrimRight(prefix, "/"))
	if !ok {
		return absolute(path)
	}
	return absolute(join(strings.TrimRight(replacement, "/"), rest))
}

// cut returns what follows prefix (given without trailing "/") in path when
// prefix is a whole-element prefix of path: "" or a string beginning with
// "/". The empty prefix (the match "/") is a prefix of every absolute path.
func cut(path, prefix string) (rest string, ok bool) {
	if !strings.HasPrefix(path, prefix) {
		return "", false
	}
	rest = path[len(prefix):]
	if rest != "" && rest[0] != '/' {
		return "", false
	}
	if prefix == "" && rest == "" {
		return "", false // an empty path is not absolute
	}
	return rest, true
}

// join puts the replacement (without trailing "/") before rest ("" or
// "/..."), giving "/" when both are empty.
func join(repl, rest string) string {
	switch {
	case repl == "" && rest == "":
		return "/"
	case repl == "":
		return rest
	case rest == "":
		return repl
	}
	return repl + rest
}

func absolute(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return "/" + p
}

// Path is a compiled ir.PathModifier, shared with package redirect. The
// zero Path keeps the path.
type Path struct {
	Type   ir.PathModifierType
	full   string // ReplaceFullPath value, escaped form
	prefix string // matched prefix, normalised, without trailing "/"
	repl   string // ReplacePrefixMatch value without trailing "/"
}

// CompilePath validates a path modifier against the route's path match. Its
// values are taken as escaped paths: they must begin with "/" (the
// ReplacePrefixMatch value may also be empty), and hold no control
// characters (nor "%00"), no '?' or '#', and only well-formed %-escapes.
func CompilePath(m *ir.PathModifier, match ir.PathMatch) (Path, error) {
	switch m.Type {
	case ir.ReplaceFullPath:
		if err := validPath(m.Value, false); err != nil {
			return Path{}, fmt.Errorf("replaceFullPath %q: %w", m.Value, err)
		}
		return Path{Type: m.Type, full: m.Value}, nil
	case ir.ReplacePrefixMatch:
		if match.Type != ir.PathPrefix && match.Type != "" {
			return Path{}, fmt.Errorf("%w, not %s", ErrPrefixNeedsPrefixMatch, match.Type)
		}
		if err := validPath(m.Value, true); err != nil {
			return Path{}, fmt.Errorf("replacePrefixMatch %q: %w", m.Value, err)
		}
		v := match.Value
		if v == "" {
			v = "/"
		}
		prefix, ok := route.NormalizePath(v)
		if !ok {
			return Path{}, fmt.Errorf("invalid path prefix %q", match.Value)
		}
		return Path{
			Type:   m.Type,
			prefix: strings.TrimRight(prefix, "/"),
			repl:   strings.TrimRight(m.Value, "/"),
		}, nil
	}
	return Path{}, fmt.Errorf("unsupported path modifier type %q", m.Type)
}

// Parts returns the modified form of the escaped path esc (the path as
// URL.EscapedPath gives it) in two pieces, head+tail, so that a caller
// writing it out (redirect's Location) need not build it. For
// ReplacePrefixMatch, esc is first normalised as the router normalises it;
// a path that does not begin with the prefix (which the router never lets
// through) is returned unchanged, as is any path for the zero Path. Either
// piece may be empty; for a non-empty esc their concatenation is not.
func (p *Path) Parts(esc string) (head, tail string) {
	head, tail, ok := p.parts(esc)
	switch {
	case !ok:
		return esc, ""
	case head == "" && tail == "":
		return "/", ""
	}
	return head, tail
}

func (p *Path) parts(esc string) (head, tail string, ok bool) {
	switch p.Type {
	case ir.ReplaceFullPath:
		return p.full, "", true
	case ir.ReplacePrefixMatch:
		if n, ok := route.NormalizePath(esc); ok {
			esc = n
		}
		if rest, ok := cut(esc, p.prefix); ok {
			return p.repl, rest, true
		}
	}
	return "", "", false
}

func validPath(v string, emptyOK bool) error {
	if v == "" {
		if emptyOK {
			return nil
		}
		return errors.New("empty path")
	}
	if v[0] != '/' {
		return errors.New("path must begin with \"/\"")
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c < 0x20 || c == 0x7f:
			return errors.New("control character in path")
		case c == '?' || c == '#':
			return fmt.Errorf("%q in path", c)
		case c == '%':
			if i+2 >= len(v) || !isHex(v[i+1]) || !isHex(v[i+2]) {
				return errors.New("malformed %-escape in path")
			}
			if v[i+1] == '0' && v[i+2] == '0' {
				return errors.New("escaped NUL in path")
			}
		}
	}
	return nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// ValidateHost checks a hostname for a rewrite or redirect: a non-empty
// DNS name of letters, digits, '-' and '.', at most 253 bytes.
func ValidateHost(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("invalid hostname %q", h)
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("invalid hostname %q", h)
		}
	}
	return nil
}
