// Package cors implements the Gateway API HTTPRoute CORS filter: it answers
// CORS preflight requests at the gateway and adds the CORS response headers
// to cross-origin requests, following the Fetch standard's CORS protocol.
//
// It sits in the proxy's per-route filter chain. The proxy compiles an
// ir.CORS once per route (or backend) when a configuration arrives (New);
// per request it answers a preflight itself (IsPreflight, Policy.Preflight)
// and decorates the backend's response to any other request
// (Policy.Decorate). A Policy is immutable and safe for concurrent use.
package cors

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"causeway.dev/causeway/internal/ir"
)

// Response and request header names, in canonical form.
const (
	hAllowOrigin      = "Access-Control-Allow-Origin"
	hAllowCredentials = "Access-Control-Allow-Credentials"
	hAllowMethods     = "Access-Control-Allow-Methods"
	hAllowHeaders     = "Access-Control-Allow-Headers"
	hExposeHeaders    = "Access-Control-Expose-Headers"
	hMaxAge           = "Access-Control-Max-Age"
	hRequestMethod    = "Access-Control-Request-Method"
	hRequestHeaders   = "Access-Control-Request-Headers"
	hOrigin           = "Origin"
	hVary             = "Vary"
)

// Value slices shared by every response. Their capacity is their length,
// so an append by a later filter copies rather than writes into them.
var (
	valStar       = []string{"*"}[:1:1]
	valTrue       = []string{"true"}[:1:1]
	valVaryOrigin = []string{"Origin"}[:1:1]
)

// Policy is a compiled CORS filter. The nil *Policy is no filter at all;
// its methods must not be called.
type Policy struct {
	anyOrigin   bool
	origins     []pattern
	credentials bool
	// static: any origin without credentials, so every response says
	// "Access-Control-Allow-Origin: *" and nothing depends on Origin.
	static bool

	anyMethod, anyHeader, anyExpose bool
	methods, headers, expose        []string // joined lists, nil when empty
	maxAge                          []string
	preflightVary                   []string
}

// pattern is one allowed origin other than "*".
type pattern struct {
	scheme string // "http" or "https"
	// host is lower case. With wild, it is what must follow the "*"
	// ("" when the host is "*" alone: any host).
	host string
	wild bool
	port int // explicit or the scheme's default
}

// New compiles c; a nil c gives a nil Policy. It refuses what the
// translator refuses (see ir.CORS), so a bad IR is caught before it serves.
func New(c *ir.CORS) (*Policy, error) {
	if c == nil {
		return nil, nil
	}
	p := &Policy{credentials: c.AllowCredentials}
	var errs []error
	for _, o := range c.AllowOrigins {
		if o == "*" {
			p.anyOrigin = true
			continue
		}
		pt, err := parsePattern(o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.origins = append(p.origins, pt)
	}
	p.static = p.anyOrigin && !p.credentials
	var err error
	if p.anyMethod, p.methods, err = list("method", c.AllowMethods, validToken); err != nil {
		errs = append(errs, err)
	}
	if p.anyHeader, p.headers, err = list("header", c.AllowHeaders, validToken); err != nil {
		errs = append(errs, err)
	}
	if p.anyExpose, p.expose, err = list("header", c.ExposeHeaders, validToken); err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.MaxAge < 0:
		errs = append(errs, fmt.Errorf("max age %d is negative", c.MaxAge))
	case c.MaxAge == 0:
		p.maxAge = []string{"5"}[:1:1]
	default:
		p.maxAge = []string{strconv.Itoa(int(c.MaxAge))}[:1:1]
	}
	if !p.static {
		p.preflightVary = append(p.preflightVary, hOrigin)
	}
	if p.anyMethod {
		p.preflightVary = append(p.preflightVary, hRequestMethod)
	}
	if p.anyHeader {
		p.preflightVary = append(p.preflightVary, hRequestHeaders)
	}
	if len(p.preflightVary) > 0 {
		p.preflightVary = []string{strings.Join(p.preflightVary, ", ")}[:1:1]
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("cors: %w", err)
	}
	return p, nil
}

// list compiles allowed methods or header names: any reports a "*" among
// them; joined is the others, comma-separated, as a shared value slice.
func list(what string, vals []string, valid func(string) bool) (any bool, joined []string, err error) {
	var out []string
	for _, v := range vals {
		switch {
		case v == "*":
			any = true
		case !valid(v):
			return false, nil, fmt.Errorf("invalid %s %q", what, v)
		case !slices.Contains(out, v):
			out = append(out, v)
		}
	}
	if len(out) > 0 {
		joined = []string{strings.Join(out, ", ")}[:1:1]
	}
	return any, joined, nil
}

// parsePattern parses an allowed origin "scheme://host[:port]" whose host
// may start with "*".
func parsePattern(s string) (pattern, error) {
	scheme, host, port, ok := split(s)
	scheme = strings.ToLower(scheme)
	if !ok || (scheme != "http" && scheme != "https") {
		return pattern{}, fmt.Errorf("origin %q is not http(s)://host[:port]", s)
	}
	pt := pattern{scheme: scheme, host: strings.ToLower(host), port: port}
	if strings.HasPrefix(pt.host, "*") {
		pt.wild, pt.host = true, pt.host[1:]
	}
	if !validHost(pt.host, pt.wild) {
		return pattern{}, fmt.Errorf("origin %q: invalid host", s)
	}
	return pt, nil
}

// split parses a serialized origin, scheme "://" host [":" port], without
// allocating. port is the scheme's default when absent (0 for schemes
// other than http and https). The host is not checked here.
func split(o string) (scheme, host string, port int, ok bool) {
	i := strings.Index(o, "://")
	if i <= 0 {
		return "", "", 0, false
	}
	scheme, rest := o[:i], o[i+3:]
	host = rest
	var ps string
	if strings.HasPrefix(rest, "[") { // IPv6 literal
		j := strings.IndexByte(rest, ']')
		if j < 0 {
			return "", "", 0, false
		}
		host, ps = rest[:j+1], rest[j+1:]
		if ps != "" {
			if ps[0] != ':' {
				return "", "", 0, false
			}
			ps = ps[1:]
			if ps == "" {
				return "", "", 0, false
			}
		}
	} else if j := strings.IndexByte(rest, ':'); j >= 0 {
		host, ps = rest[:j], rest[j+1:]
		if ps == "" {
			return "", "", 0, false
		}
	}
	if host == "" {
		return "", "", 0, false
	}
	switch {
	case ps != "":
		if len(ps) > 5 {
			return "", "", 0, false
		}
		for k := 0; k < len(ps); k++ {
			if ps[k] < '0' || ps[k] > '9' {
				return "", "", 0, false
			}
			port = port*10 + int(ps[k]-'0')
		}
		if port < 1 || port > 65535 {
			return "", "", 0, false
		}
	case strings.EqualFold(scheme, "http"):
		port = 80
	case strings.EqualFold(scheme, "https"):
		port = 443
	}
	return scheme, host, port, true
}

// validHost reports whether h is made of DNS name characters (either
// case); with wild it is what follows a "*" and may be empty or start with
// a dot.
func validHost(h string, wild bool) bool {
	if h == "" {
		return wild
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
		case c == '.':
			if i == len(h)-1 || h[i+1] == '.' || (i == 0 && !wild) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// Allows reports whether a request from origin may share the response.
// "" (no Origin) is never allowed. "*" allows any origin, except the opaque
// origin "null" when credentials are allowed: echoing it would hand
// credentialed responses to every sandboxed document.
func (p *Policy) Allows(origin string) bool {
	if origin == "" {
		return false
	}
	if p.anyOrigin {
		return origin != "null" || !p.credentials
	}
	scheme, host, port, ok := split(origin)
	if !ok {
		return false
	}
	for i := range p.origins {
		pt := &p.origins[i]
		if pt.port != port || !strings.EqualFold(pt.scheme, scheme) {
			continue
		}
		if !pt.wild {
			if strings.EqualFold(pt.host, host) {
				return true
			}
			continue
		}
		// "*" stands for one or more characters of a DNS name, dots
		// included: greedy to the left.
		n := len(host) - len(pt.host)
		if n > 0 && strings.EqualFold(host[n:], pt.host) && validHost(host[:n], false) {
			return true
		}
	}
	return false
}

// Origin returns the request's Origin, "" when it has none or several.
func Origin(req http.Header) string {
	if v := req[hOrigin]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// IsPreflight reports whether r is a CORS preflight request: OPTIONS with
// Origin and Access-Control-Request-Method. Such a request is answered by
// the gateway (Preflight), never forwarded.
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && len(r.Header[hOrigin]) > 0 && len(r.Header[hRequestMethod]) > 0
}

// Preflight writes into h the response headers answering the preflight
// request whose headers are req; the caller then writes an OK status (the
// proxy uses 204). An origin that is not allowed gets no CORS headers, and
// the browser fails the request, as Gateway API says.
//
// A "*" in allowMethods or allowHeaders is answered by echoing the
// request's Access-Control-Request-Method or -Headers, which every browser
// understands and which Gateway API requires with credentials.
func (p *Policy) Preflight(h, req http.Header) {
	if p.preflightVary != nil {
		h[hVary] = p.preflightVary
	}
	origin := Origin(req)
	if !p.Allows(origin) {
		return
	}
	p.allowOrigin(h, origin)
	switch {
	case p.anyMethod:
		if m := req[hRequestMethod]; len(m) == 1 && validToken(m[0]) {
			h[hAllowMethods] = []string{m[0]}
		}
	case p.methods != nil:
		h[hAllowMethods] = p.methods
	}
	switch {
	case p.anyHeader:
		if v := requestHeaders(req[hRequestHeaders]); v != "" {
			h[hAllowHeaders] = []string{v}
		}
	case p.headers != nil:
		h[hAllowHeaders] = p.headers
	}
	switch {
	case p.expose != nil:
		h[hExposeHeaders] = p.expose
	case p.anyExpose && !p.credentials:
		h[hExposeHeaders] = valStar
	}
	h[hMaxAge] = p.maxAge
}

// requestHeaders joins the Access-Control-Request-Headers lines; "" when
// absent or empty.
func requestHeaders(lines []string) string {
	switch len(lines) {
	case 0:
		return ""
	case 1:
		return strings.TrimSpace(lines[0])
	}
	var b strings.Builder
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(l)
		}
	}
	return b.String()
}

// allowOrigin sets the allowed-origin and credentials headers for an
// allowed origin.
func (p *Policy) allowOrigin(h http.Header, origin string) {
	if p.static {
		h[hAllowOrigin] = valStar
		return
	}
	h[hAllowOrigin] = []string{origin}
	if p.credentials {
		h[hAllowCredentials] = valTrue
	}
}

// Decorate adds to h, the headers of the response to a request that is
// not a preflight, the CORS headers for origin ("" for a request without
// Origin). Headers the backend set are replaced only when the origin is
// allowed.
//
// Unless every origin is allowed without credentials (then the answer is
// always "*"), the response depends on Origin, so Decorate adds
// "Vary: Origin" even to non-CORS requests: an HTTP cache must not serve
// one origin's answer to another (Fetch standard, "CORS protocol and HTTP
// caches").
//
// Decorate does not allocate for a request without Origin unless the
// response has a Vary without Origin or h must grow; for an allowed origin
// it allocates the echoed origin's value slice.
func (p *Policy) Decorate(h http.Header, origin string) {
	if p.static {
		h[hAllowOrigin] = valStar
		if p.expose != nil {
			h[hExposeHeaders] = p.expose
		} else if p.anyExpose {
			h[hExposeHeaders] = valStar
		}
		return
	}
	addVary(h)
	if !p.Allows(origin) {
		return
	}
	p.allowOrigin(h, origin)
	switch {
	case p.expose != nil:
		h[hExposeHeaders] = p.expose
	case p.anyExpose && p.credentials:
		// "*" is not a wildcard for credentialed requests: name the
		// response's headers instead.
		if v := exposable(h); v != "" {
			h[hExposeHeaders] = []string{v}
		}
	case p.anyExpose:
		h[hExposeHeaders] = valStar
	}
}

// addVary makes sure the Vary header lists Origin.
func addVary(h http.Header) {
	old := h[hVary]
	if len(old) == 0 {
		h[hVary] = valVaryOrigin
		return
	}
	for _, line := range old {
		for line != "" {
			var tok string
			tok, line, _ = strings.Cut(line, ",")
			tok = strings.TrimSpace(tok)
			if tok == "*" || strings.EqualFold(tok, hOrigin) {
				return
			}
		}
	}
	h[hVary] = append(old[:len(old):len(old)], hOrigin)
}

// safelisted are the CORS-safelisted response header names, exposed by
// default, and those that can never be exposed (Fetch standard).
var safelisted = []string{
	"Cache-Control", "Content-Language", "Content-Length", "Content-Type",
	"Expires", "Last-Modified", "Pragma", "Set-Cookie", "Set-Cookie2",
}

// exposable lists, sorted and comma-separated, the names of the response
// headers that a credentialed CORS request cannot read by default.
func exposable(h http.Header) string {
	var names []string
	for k := range h {
		if slices.Contains(safelisted, k) || strings.HasPrefix(k, "Access-Control-") || k == hVary {
			continue
		}
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// validToken reports whether s is an RFC 9110 token (a method or a header
// name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
