// Package redirect implements the Gateway API RequestRedirect filter: the
// proxy answers with a 3xx and a Location instead of forwarding.
//
// It sits in the proxy's per-route filter chain and ends it: when a route
// has a redirect, no backend is called. The proxy builds a Redirect once per
// route when a configuration arrives (New, which validates and does no I/O)
// and asks it, per request, for the status code and Location to send
// (Redirect.Response). A Redirect is immutable and safe for concurrent use.
package redirect

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"causeway.dev/causeway/internal/filter/rewrite"
	"causeway.dev/causeway/internal/ir"
)

// Redirect is a compiled request redirect.
type Redirect struct {
	code   int
	scheme string // "" keeps the downstream scheme
	host   string // "" keeps the request's host
	port   int    // 0: derived, see Response
	path   rewrite.Path
}

// New validates r and compiles it. match is the route's path match, needed
// by ReplacePrefixMatch (see rewrite.CompilePath). Accepted: scheme "http"
// or "https"; a hostname of DNS characters; port 1-65535; status 301, 302,
// 303, 307 or 308, where 0 means 302 (the Gateway API default).
func New(r *ir.Redirect, match ir.PathMatch) (*Redirect, error) {
	if r == nil {
		return nil, fmt.Errorf("nil redirect")
	}
	rd := &Redirect{code: r.StatusCode}
	switch rd.code {
	case 0:
		rd.code = http.StatusFound
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return nil, fmt.Errorf("unsupported redirect status code %d", r.StatusCode)
	}
	if r.Scheme != nil {
		switch *r.Scheme {
		case "http", "https":
			rd.scheme = *r.Scheme
		default:
			return nil, fmt.Errorf("unsupported redirect scheme %q", *r.Scheme)
		}
	}
	if r.Hostname != nil {
		if err := rewrite.ValidateHost(*r.Hostname); err != nil {
			return nil, fmt.Errorf("redirect hostname: %w", err)
		}
		rd.host = *r.Hostname
	}
	if r.Port != nil {
		if *r.Port < 1 || *r.Port > 65535 {
			return nil, fmt.Errorf("redirect port %d out of range", *r.Port)
		}
		rd.port = *r.Port
	}
	if r.Path != nil {
		p, err := rewrite.CompilePath(r.Path, match)
		if err != nil {
			return nil, fmt.Errorf("redirect path: %w", err)
		}
		rd.path = p
	}
	return rd, nil
}

// Response computes the status code and Location for the inbound request
// in, received with the downstream scheme ("http" or "https") on a listener
// of port port.
//
// Location is scheme://host[:port]path[?query]:
//   - scheme is the configured one, else the downstream scheme;
//   - host is the configured hostname, else in.Host without its port
//     (in.URL.Host when in.Host is empty); an IPv6 address is bracketed;
//   - port is the configured one; else, when a scheme is configured, the
//     well-known port of that scheme (80 or 443); else the listener port.
//     It is left out when it is the well-known port of the scheme, or not
//     positive;
//   - path is in.URL.EscapedPath() modified by the path modifier;
//   - the query is kept.
//
// Response allocates only the Location string.
func (r *Redirect) Response(in *http.Request, scheme string, port int) (code int, location string) {
	if r.scheme != "" {
		scheme = r.scheme
	}
	host := r.host
	if host == "" {
		h := in.Host
		if h == "" {
			h = in.URL.Host
		}
		host = hostOnly(h)
	}
	switch {
	case r.port != 0:
		port = r.port
	case r.scheme != "":
		port = wellKnown(r.scheme)
	}
	if port <= 0 || port == wellKnown(scheme) {
		port = 0
	}
	path, tail := r.path.Parts(in.URL.EscapedPath())
	if path == "" && tail == "" {
		path = "/"
	}

	var buf [5]byte // room for any port
	portStr := strconv.AppendInt(buf[:0], int64(port), 10)
	ipv6 := strings.IndexByte(host, ':') >= 0
	n := len(scheme) + len("://") + len(host) + len("[]:") + len(portStr) + len(path) + len(tail) + 1 + len(in.URL.RawQuery)
	var b strings.Builder
	b.Grow(n)
	b.WriteString(scheme)
	b.WriteString("://")
	if ipv6 {
		b.WriteByte('[')
	}
	b.WriteString(host)
	if ipv6 {
		b.WriteByte(']')
	}
	if port != 0 {
		b.WriteByte(':')
		b.Write(portStr)
	}
	b.WriteString(path)
	b.WriteString(tail)
	if q := in.URL.RawQuery; q != "" {
		b.WriteByte('?')
		b.WriteString(q)
	}
	return r.code, b.String()
}

// hostOnly removes the port from a Host value: "a:80" gives "a",
// "[::1]:80" and "[::1]" give "::1". A bare IPv6 address (several colons,
// no brackets) is returned whole.
func hostOnly(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := strings.IndexByte(h, ':'); i >= 0 && strings.LastIndexByte(h, ':') == i {
		return h[:i]
	}
	return h
}

func wellKnown(scheme string) int {
	switch scheme {
	case "http":
		return 80
	case "https":
		return 443
	}
	return -1
}
