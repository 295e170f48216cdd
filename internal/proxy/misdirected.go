package proxy

import (
	"fmt"
	"net/http"
	"strings"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/route"
)

// Misdirected requests (Gateway API GatewayHTTPSListenerDetectMisdirectedRequests).
//
// Several Gateway listeners with different hostnames may share one HTTPS
// socket. The TLS server name (SNI) of a connection selects one of them,
// and so does each request's Host; a client that reuses a connection made
// for one listener (HTTP/2 connection coalescing, or a mistake) to send a
// request meant for another is answered 421 Misdirected Request (RFC 9110
// §15.5.20), so that it retries on a connection of its own, and nothing is
// routed. Selection is the virtual host order: exact name, then the
// longest wildcard, then a listener without hostname ("*").
//
// When the server name selects no listener (no SNI sent, or one that no
// hostname matches, and no "*" listener), the request is routed as usual:
// the connection was not made for any listener, so none can be the wrong
// one. When the Host selects none, routing answers 404 as usual (Gateway
// API: 421 only if another listener matches the Host). Sockets with a
// single hostname have no selector (ir.Listener.SNIHostnames is empty),
// and plain HTTP sockets are never checked.
//
// The access log flag of a 421 is "MR".

// sniMap maps a host name to the position of the listener hostname
// that serves it in ir.Listener.SNIHostnames. Immutable once compiled.
type sniMap struct {
	exact map[string]int32 // "a.example.com"
	wild  map[string]int32 // ".example.com" for "*.example.com"
	any   int32            // position of "*"; -1 when there is none
}

// compileMisdirect builds the selector of an HTTPS listener with two or
// more hostnames; nil means no check.
func compileMisdirect(l *ir.Listener) (*sniMap, error) {
	if l.Protocol != ir.ProtocolHTTPS || len(l.SNIHostnames) < 2 {
		return nil, nil
	}
	s := &sniMap{exact: map[string]int32{}, wild: map[string]int32{}, any: -1}
	for i, h := range l.SNIHostnames {
		d := strings.TrimSuffix(strings.ToLower(h), ".")
		pos := int32(i)
		switch {
		case d == "*" || d == "":
			if s.any < 0 {
				s.any = pos
			}
		case strings.HasPrefix(d, "*.") && len(d) > 2 && !strings.Contains(d[1:], "*"):
			if _, dup := s.wild[d[1:]]; !dup {
				s.wild[d[1:]] = pos
			}
		case strings.Contains(d, "*"):
			return nil, fmt.Errorf("sni hostname %q: invalid wildcard", h)
		default:
			if _, dup := s.exact[d]; !dup {
				s.exact[d] = pos
			}
		}
	}
	return s, nil
}

// maxName bounds the names looked up; longer ones (not valid DNS names)
// select only "*", as they do in the route table.
const maxName = 255

// index returns the position of the listener hostname selecting name, or
// -1. It does not allocate: a name with upper-case letters is lowered in a
// stack buffer, and map lookups keyed by string(bytes) do not copy.
func (s *sniMap) index(name string) int32 {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > maxName {
		return s.any
	}
	for i := 0; i < len(name); i++ {
		if 'A' <= name[i] && name[i] <= 'Z' {
			var buf [maxName]byte
			b := buf[:copy(buf[:], name)]
			for j, c := range b[i:] {
				if 'A' <= c && c <= 'Z' {
					b[i+j] = c + ('a' - 'A')
				}
			}
			return lookup(s, b)
		}
	}
	return lookup(s, name)
}

// lookup is index on a lower-case name without trailing dot.
func lookup[T string | []byte](s *sniMap, name T) int32 {
	if i, ok := s.exact[string(name)]; ok {
		return i
	}
	if len(s.wild) > 0 {
		// The first dot gives the longest suffix, the most specific
		// wildcard; i > 0 keeps at least one label in place of the star.
		for i := 1; i < len(name); i++ {
			if name[i] == '.' {
				if v, ok := s.wild[string(name[i:])]; ok {
					return v
				}
			}
		}
	}
	return s.any
}

// misdirected reports whether r, received over TLS, names a listener other
// than the one its connection's server name selected.
func (s *sniMap) misdirected(r *http.Request) bool {
	if r.TLS == nil {
		return false
	}
	name, host := r.TLS.ServerName, route.StripPort(r.Host)
	if name == host || strings.EqualFold(name, host) {
		return false // the usual case, settled without lookups
	}
	sni := s.index(name)
	if sni < 0 {
		return false
	}
	h := s.index(host)
	return h >= 0 && h != sni
}

// misdirectedReply answers 421 as plain HTTP, gRPC requests included: the
// status is about the connection, and a client retries on a new one only
// if it sees it.
func (x *exchange) misdirectedReply(w http.ResponseWriter) {
	x.grpc = false
	x.localReply(w, http.StatusMisdirectedRequest, "MR", "misdirected request: the Host names another listener than the TLS server name\n")
}
