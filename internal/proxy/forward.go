package proxy

import (
	"encoding/binary"
	"math/rand/v2"
	"net/http"
	"strings"
)

// removeHopHeaders deletes the hop-by-hop fields of RFC 9110 7.6.1: those
// named by Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding, TE
// (but "TE: trailers" is kept: gRPC needs it) and, unless the message is
// an upgrade that goes through, Connection and Upgrade themselves.
func removeHopHeaders(h http.Header, upgrade bool) {
	if conn, ok := h["Connection"]; ok {
		for _, v := range conn {
			for v != "" {
				var tok string
				tok, v, _ = strings.Cut(v, ",")
				tok = strings.TrimSpace(tok)
				if tok == "" || upgrade && strings.EqualFold(tok, "upgrade") {
					continue
				}
				delete(h, http.CanonicalHeaderKey(tok))
			}
		}
		if upgrade {
			h["Connection"] = []string{"Upgrade"}
		} else {
			delete(h, "Connection")
		}
	}
	delete(h, "Keep-Alive")
	delete(h, "Proxy-Connection")
	delete(h, "Transfer-Encoding")
	if te, ok := h["Te"]; ok {
		if hasToken(te, "trailers") {
			h["Te"] = []string{"trailers"}
		} else {
			delete(h, "Te")
		}
	}
	if !upgrade {
		delete(h, "Upgrade")
	}
}

// hasToken tells whether a comma-separated field holds tok, ignoring case
// and parameters.
func hasToken(vals []string, tok string) bool {
	for _, v := range vals {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			t, _, _ = strings.Cut(t, ";")
			if strings.EqualFold(strings.TrimSpace(t), tok) {
				return true
			}
		}
	}
	return false
}

// isUpgrade tells whether an HTTP/1.1 request asks for a protocol upgrade
// (WebSocket and the like).
func isUpgrade(r *http.Request) bool {
	if r.ProtoMajor != 1 {
		return false
	}
	up := r.Header["Upgrade"]
	return len(up) > 0 && up[0] != "" && hasToken(r.Header["Connection"], "upgrade")
}

// forwardHeaders sets X-Forwarded-For, -Proto, -Host and X-Request-Id on
// the outbound request and returns the request id. Values the client sent
// are kept only when TrustedHops > 0; X-Forwarded-For is always appended
// to. X-Forwarded-Client-Cert is never taken from the client (xfcc.go).
func (p *Proxy) forwardHeaders(r *http.Request, g *graph) string {
	h := r.Header
	g.client.setXFCC(h, r.TLS)
	trusted := p.opts.TrustedHops > 0
	// One backing array for the values set here: one allocation, and each
	// slice capped so that an append elsewhere copies.
	vals := make([]string, 3)
	n := 0
	set := func(k, v string) {
		vals[n] = v
		h[k] = vals[n : n+1 : n+1]
		n++
	}

	ip := peerIP(r.RemoteAddr)
	if prior, ok := h["X-Forwarded-For"]; ok && len(prior) > 0 {
		set("X-Forwarded-For", strings.Join(prior, ", ")+", "+ip)
	} else {
		set("X-Forwarded-For", ip)
	}
	if !trusted || len(h["X-Forwarded-Proto"]) == 0 {
		h["X-Forwarded-Proto"] = g.forwards
	}
	if !trusted || len(h["X-Forwarded-Host"]) == 0 {
		set("X-Forwarded-Host", r.Host)
	}
	if trusted {
		if id := h["X-Request-Id"]; len(id) > 0 && id[0] != "" {
			return id[0]
		}
	}
	id := newRequestID()
	set("X-Request-Id", id)
	return id
}

// peerIP is the address of r.RemoteAddr without port and brackets.
func peerIP(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 && strings.IndexByte(addr[i:], ']') < 0 {
		addr = addr[:i]
	}
	if len(addr) > 1 && addr[0] == '[' && addr[len(addr)-1] == ']' {
		addr = addr[1 : len(addr)-1]
	}
	return addr
}

// newRequestID returns a random UUID (version 4) in its text form. It is
// not a security token, so the fast per-thread generator is enough.
func newRequestID() string {
	var u [16]byte
	binary.BigEndian.PutUint64(u[:8], rand.Uint64())
	binary.BigEndian.PutUint64(u[8:], rand.Uint64())
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hex[c>>4], hex[c&15]
		j += 2
	}
	return string(b[:])
}
