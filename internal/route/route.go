// Package route is the compiled request-match table of the proxy.
//
// It sits between the IR and the request path: when a configuration
// arrives, the proxy calls Compile once per listener with that listener's
// ir.VirtualHosts and a function that builds its own handler for each
// ir.Route; per request it normalises the path with NormalizePath and asks
// Table.Match which handler serves the request. A Table is immutable, so
// the proxy publishes it with an atomic swap and reads it from any number of
// goroutines without locks.
//
// Matching is indexed so that its cost does not grow with the number of
// routes: exact hosts by hash table, wildcard hosts by walking the label
// boundaries of the request host, and within a virtual host exact paths and
// prefixes by a trie of path segments and regular expressions by a list.
// The indexes are flat arrays laid out at compile time, so that a lookup
// touches a few cache lines whatever the size of the table. Every index
// holds route positions in list order; Match keeps the smallest position
// whose full Match holds, so the result is exactly "the first route in list
// order", as the IR requires.
package route

import (
	"net/http"
	"regexp"
	"strings"
)

// Request is what matching looks at. Path is the request path without query,
// already normalised by NormalizePath.
type Request struct {
	Host     string // Host header or :authority, may carry a port and any letter case
	Path     string
	Method   string
	RawQuery string      // without '?'
	Header   http.Header // canonical keys, as net/http gives them
}

// Table is the compiled match table of one listener. It is immutable after
// Compile and safe for concurrent use.
type Table[T any] struct {
	hosts []vhost[T]
	exact hostTable // lower-case domain, no trailing dot → index in hosts
	wild  hostTable // "*.example.com" stored as ".example.com"
	any   int32     // index of "*" in hosts, or -1
}

// vhost is one compiled virtual host.
type vhost[T any] struct {
	entries []entry[T] // in list order
	paths   trie       // Exact and PathPrefix routes
	regex   []int32    // RegularExpression routes, ascending
}

// entry is one route: its conditions next to its value, so a hit touches
// one place.
type entry[T any] struct {
	cond
	val T
}

// cond is everything of a route's Match but the Exact or PathPrefix path,
// which the trie has already checked.
type cond struct {
	method string         // "" for any
	pathRe *regexp.Regexp // for RegularExpression paths
	more   *moreCond      // nil without header or query conditions
}

// moreCond holds the rarer conditions apart, keeping entries small.
type moreCond struct {
	headers []valueMatch
	query   []valueMatch
}

// valueMatch compares one header or query parameter value.
type valueMatch struct {
	name  string
	value string         // for Exact
	re    *regexp.Regexp // for RegularExpression; nil for Exact
}

func (m *valueMatch) match(s string) bool {
	if m.re != nil {
		return m.re.MatchString(s)
	}
	return s == m.value
}

// Match returns the value built for the first route (in list order) of the
// virtual host selected by req.Host whose Match holds. It does not allocate
// except to test a regular expression against a header sent several times
// or a query value with escapes. Safe for concurrent use. A nil Table
// matches nothing.
func (t *Table[T]) Match(req *Request) (T, bool) {
	if t == nil {
		var zero T
		return zero, false
	}
	if vh := t.host(req.Host); vh != nil {
		if i := vh.find(req); i >= 0 {
			return vh.entries[i].val, true
		}
	}
	var zero T
	return zero, false
}

// maxDepth is how many trie nodes find remembers to scan deepest first;
// deeper ones are scanned as they are walked, which is equally correct.
const maxDepth = 16

// find returns the smallest position whose conditions hold, or -1. Lists
// are scanned only below the best position found so far, and the deepest
// prefixes first, since Gateway API precedence puts them first.
func (vh *vhost[T]) find(req *Request) int32 {
	none := int32(len(vh.entries))
	best := none
	t := &vh.paths
	var walked [maxDepth]int32 // walked[0] is the root
	depth := 1
	if p := req.Path; p != "" && p[0] == '/' {
		rest := p[1:]
		if rest == "" {
			best = vh.scan(t, t.nodes[0].exactSlash, best, req)
		}
		n := int32(0)
		for rest != "" {
			i := strings.IndexByte(rest, '/')
			seg := rest
			if i >= 0 {
				seg = rest[:i]
			}
			if n = t.child(n, seg); n < 0 {
				break
			}
			if depth < maxDepth {
				walked[depth] = n
				depth++
			} else {
				best = vh.scan(t, t.nodes[n].prefix, best, req)
			}
			if i < 0 {
				best = vh.scan(t, t.nodes[n].exact, best, req)
				break
			}
			if rest = rest[i+1:]; rest == "" {
				best = vh.scan(t, t.nodes[n].exactSlash, best, req)
			}
		}
	}
	for d := depth - 1; d >= 0; d-- {
		best = vh.scan(t, t.nodes[walked[d]].prefix, best, req)
	}
	for _, i := range vh.regex {
		if i >= best {
			break
		}
		if e := &vh.entries[i]; e.holds(req) && e.pathRe.MatchString(req.Path) {
			best = i
			break
		}
	}
	if best == none {
		return -1
	}
	return best
}

// scan returns the first position of s below best whose conditions hold,
// or best.
func (vh *vhost[T]) scan(t *trie, s span, best int32, req *Request) int32 {
	if s.n == 1 {
		if s.off < best && vh.entries[s.off].holds(req) {
			return s.off
		}
		return best
	}
	for _, i := range t.lists[s.off : s.off+s.n] {
		if i >= best {
			break
		}
		if vh.entries[i].holds(req) {
			return i
		}
	}
	return best
}

// holds checks method, headers and query (not the path).
func (c *cond) holds(req *Request) bool {
	if c.method != "" && c.method != req.Method {
		return false
	}
	if c.more == nil {
		return true
	}
	for i := range c.more.headers {
		if h := &c.more.headers[i]; !headerHolds(h, req.Header[h.name]) {
			return false
		}
	}
	for i := range c.more.query {
		if !queryHolds(&c.more.query[i], req.RawQuery) {
			return false
		}
	}
	return true
}
