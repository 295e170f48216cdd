package translate

import (
	"fmt"
	"net/netip"
	"strings"
)

// Hostnames here are lower-case DNS names, or wildcards "*.example.com"
// whose star stands for one or more labels (Gateway API semantics), or "*"
// for any name. An empty listener hostname is written "*" once it becomes a
// domain.

// validHostname checks a Gateway API Hostname: an RFC 1123 DNS name, lower
// case, not an IP address, optionally prefixed by a single "*." label when
// wildcard is allowed.
func validHostname(h string, wildcard bool) error {
	if h == "" {
		return fmt.Errorf("hostname is empty")
	}
	if len(h) > 253 {
		return fmt.Errorf("hostname %q is longer than 253 characters", h)
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return fmt.Errorf("hostname %q is an IP address; a DNS name is required", h)
	}
	name := h
	if strings.HasPrefix(h, "*.") {
		if !wildcard {
			return fmt.Errorf("hostname %q may not be a wildcard here", h)
		}
		name = h[2:]
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("hostname %q has an empty or too long label", h)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(label)-1
			if !ok {
				return fmt.Errorf("hostname %q: label %q must be lower-case letters, digits and inner '-'", h, label)
			}
		}
	}
	return nil
}

func isWildcard(h string) bool { return strings.HasPrefix(h, "*.") }

// covers reports whether every name matched by domain b is also matched by
// domain a ("*" covers everything; "*.example.com" covers "x.example.com",
// "x.y.example.com" and "*.y.example.com" but not "example.com").
func covers(a, b string) bool {
	switch {
	case a == "*" || a == b:
		return true
	case b == "*":
		return false
	case isWildcard(a):
		suffix := a[1:] // ".example.com"
		if isWildcard(b) {
			return strings.HasSuffix(b[1:], suffix)
		}
		return len(b) > len(suffix) && strings.HasSuffix(b, suffix)
	}
	return false
}

// intersect returns the domain matched by both a route hostname and a
// listener hostname ("" = any), and false when they share no name. Of two
// overlapping wildcards the more specific is the intersection.
func intersect(route, listener string) (string, bool) {
	if listener == "" {
		return route, true
	}
	switch {
	case covers(listener, route):
		return route, true
	case covers(route, listener):
		return listener, true
	}
	return "", false
}

// domains returns the effective domains of a route on a listener, sorted by
// precedence; none means the route does not attach to that listener.
func domains(routeHosts []string, listener string) []string {
	if len(routeHosts) == 0 {
		if listener == "" {
			return []string{"*"}
		}
		return []string{listener}
	}
	seen := make(map[string]bool, len(routeHosts))
	var out []string
	for _, h := range routeHosts {
		if d, ok := intersect(h, listener); ok && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	sortDomains(out)
	return out
}

// domainLess orders domains by precedence: exact names first
// (alphabetically), then wildcards with more labels first, then "*". It is
// a total order.
func domainLess(a, b string) bool {
	ra, rb := domainRank(a), domainRank(b)
	if ra != rb {
		return ra < rb
	}
	if ra == 1 {
		if la, lb := strings.Count(a, "."), strings.Count(b, "."); la != lb {
			return la > lb
		}
		if len(a) != len(b) {
			return len(a) > len(b)
		}
	}
	return a < b
}

func domainRank(d string) int {
	switch {
	case d == "*":
		return 2
	case isWildcard(d):
		return 1
	}
	return 0
}

func sortDomains(ds []string) {
	// Insertion sort: lists are short and this keeps the package free of
	// a second comparator adapter.
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && domainLess(ds[j], ds[j-1]); j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
}

// listenerDomain is a listener hostname written as a domain.
func listenerDomain(h string) string {
	if h == "" {
		return "*"
	}
	return h
}
