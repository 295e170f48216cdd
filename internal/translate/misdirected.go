package translate

import (
	"slices"

	"causeway.dev/causeway/internal/ir"
)

// sniHostnames returns ir.Listener.SNIHostnames of an HTTPS socket: the
// distinct hostnames of the Gateway listeners on it, as domains ("*" for
// none), in domain precedence order; nil for other protocols and for a
// single hostname, where the TLS server name and the Host cannot select
// different listeners (the proxy then does no misdirected-request check).
func sniHostnames(s *socket) []string {
	if s.l.Protocol != ir.ProtocolHTTPS {
		return nil
	}
	var out []string
	for _, l := range s.listeners {
		if d := listenerDomain(l.hostname); !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	if len(out) < 2 {
		return nil
	}
	sortDomains(out)
	return out
}
