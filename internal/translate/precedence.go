package translate

import (
	"slices"
	"sort"

	"causeway.dev/causeway/internal/ir"
)

// Route precedence within a virtual host, Gateway API's HTTPRouteRule
// order made total:
//
//  1. Exact paths, then RegularExpression paths, then PathPrefix paths.
//     Gateway API leaves regular expressions implementation-specific; they
//     go between Exact and PathPrefix so that a prefix such as "/" never
//     hides them, longest expression first.
//  2. Longer path value first (the "largest number of characters" rule for
//     prefixes; harmless for Exact, whose different values never overlap).
//  3. A method match before none.
//  4. More header matches first, then more query parameter matches first.
//  5. Across routes: older creationTimestamp first (no timestamp sorts as
//     oldest), then "namespace/name" alphabetically.
//  6. Within one route: rule order, then match order.
//
// Two GRPCRoute entries are first ordered by grpcCompare (grpcroute.go).
func entryLess(a, b *entry) bool {
	if c := grpcCompare(a, b); c != 0 {
		return c < 0
	}
	ma, mb := &a.route.Match, &b.route.Match
	if ra, rb := pathRank(ma.Path.Type), pathRank(mb.Path.Type); ra != rb {
		return ra < rb
	}
	if la, lb := len(ma.Path.Value), len(mb.Path.Value); la != lb {
		return la > lb
	}
	if (ma.Method != "") != (mb.Method != "") {
		return ma.Method != ""
	}
	if len(ma.Headers) != len(mb.Headers) {
		return len(ma.Headers) > len(mb.Headers)
	}
	if len(ma.Query) != len(mb.Query) {
		return len(ma.Query) > len(mb.Query)
	}
	if !a.created.Equal(&b.created) {
		return a.created.Before(&b.created)
	}
	if a.key != b.key {
		return a.key.String() < b.key.String()
	}
	if a.rule != b.rule {
		return a.rule < b.rule
	}
	return a.match < b.match
}

func pathRank(t ir.PathMatchType) int {
	switch t {
	case ir.PathExact:
		return 0
	case ir.PathRegex:
		return 1
	}
	return 2
}

// build assembles the IR from the sockets and the clusters routes use.
func (t *translator) build() *ir.Config {
	cfg := &ir.Config{Listeners: []*ir.Listener{}, Clusters: []*ir.Cluster{}}
	socks := t.sortedSockets()
	sort.SliceStable(socks, func(i, j int) bool {
		a, b := socks[i].l, socks[j].l
		if a.Address != b.Address {
			return a.Address < b.Address
		}
		return a.Port < b.Port
	})
	used := map[string]bool{}
	for _, s := range socks {
		l := s.l
		seen := map[string]bool{}
		l.Gateways = []string{}
		for _, gl := range s.listeners {
			if k := gl.gw.key.String(); !seen[k] {
				seen[k] = true
				l.Gateways = append(l.Gateways, k)
			}
		}
		sort.Strings(l.Gateways)
		if l.Protocol == ir.ProtocolHTTPS {
			l.TLS = &ir.TLS{Certificates: certificates(s)}
		}
		l.VirtualHosts = t.virtualHosts(s)
		for _, vh := range l.VirtualHosts {
			for _, r := range vh.Routes {
				for _, b := range r.Backends {
					used[b.Cluster] = true
				}
				for _, m := range r.Mirrors {
					used[m.Cluster] = true
				}
			}
		}
		cfg.Listeners = append(cfg.Listeners, l)
	}
	for name := range used {
		if c := t.clusters[name]; c != nil {
			cfg.Clusters = append(cfg.Clusters, c)
		}
	}
	sort.Slice(cfg.Clusters, func(i, j int) bool { return cfg.Clusters[i].Name < cfg.Clusters[j].Name })
	return cfg
}

// certificates orders a socket's certificates by SNI precedence (exact,
// then longer wildcards, then catch-all), keeping Gateway and listener
// order among equals.
func certificates(s *socket) []*ir.Certificate {
	var out []*ir.Certificate
	for _, l := range s.listeners {
		out = append(out, l.certs...)
	}
	key := func(c *ir.Certificate) string {
		if len(c.SNI) == 0 {
			return "*"
		}
		return c.SNI[0]
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := key(out[i]), key(out[j])
		return a != b && domainLess(a, b)
	})
	return out
}

// virtualHosts groups a socket's placed entries by domain.
//
// A request is served by the most specific virtual host matching its Host,
// with no fall through, so each virtual host must hold every route that
// Gateway API would consider for its names: the routes of its own domain
// and those of less specific domains covering it ("*.example.com" routes
// also serve "a.example.com"). Listener isolation limits that to routes
// that came through the listener that owns the names: the most specific
// listener hostname covering the domain. Listener hostnames get a virtual
// host of their own (possibly empty, so 404) whenever a less specific one
// would otherwise catch their names.
func (t *translator) virtualHosts(s *socket) []*ir.VirtualHost {
	// Routes on a socket several Gateways share say whose they are.
	shared := len(s.l.Gateways) > 1
	lhosts := map[string]int{} // listener domain → first Gateway order
	for _, l := range s.listeners {
		d := listenerDomain(l.hostname)
		if o, ok := lhosts[d]; !ok || l.gw.order < o {
			lhosts[d] = l.gw.order
		}
	}
	owner := func(d string) string {
		best := ""
		for lh := range lhosts {
			if covers(lh, d) && (best == "" || domainLess(lh, best)) {
				best = lh
			}
		}
		return best
	}
	candidates := map[string]bool{}
	for _, e := range s.entries {
		candidates[e.domain] = true
	}
	for lh := range lhosts {
		if lh != "*" {
			candidates[lh] = true
		}
	}
	names := make([]string, 0, len(candidates))
	for d := range candidates {
		names = append(names, d)
	}
	sortDomains(names)

	out := []*ir.VirtualHost{}
	var empty []string
	for _, d := range names {
		own := owner(d)
		var es []*entry
		for _, e := range s.entries {
			if e.listener == own && covers(e.domain, d) {
				es = append(es, e)
			}
		}
		if len(es) == 0 {
			if _, isListener := lhosts[d]; isListener {
				empty = append(empty, d)
			}
			continue
		}
		sort.SliceStable(es, func(i, j int) bool { return entryLess(es[i], es[j]) })
		vh := &ir.VirtualHost{Domain: d, Routes: []*ir.Route{}}
		gw := es[0].gwOrder
		seen := map[string]*ir.Route{}
		for _, e := range es {
			gw = min(gw, e.gwOrder)
			if r := seen[e.route.Name]; r != nil { // attached twice to this socket, same route
				if shared {
					r.Gateways = addGateway(r.Gateways, t.gwOrder[e.gwOrder].key.String())
				}
				continue
			}
			r := *e.route
			if shared {
				r.Gateways = []string{t.gwOrder[e.gwOrder].key.String()}
			}
			seen[e.route.Name] = &r
			vh.Routes = append(vh.Routes, &r)
		}
		vh.Gateway = t.gwOrder[gw].key.String()
		out = append(out, vh)
	}
	for _, d := range empty {
		for _, vh := range out {
			if vh.Domain != d && covers(vh.Domain, d) {
				out = append(out, &ir.VirtualHost{Domain: d, Gateway: t.gwOrder[lhosts[d]].key.String(), Routes: []*ir.Route{}})
				break
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return domainLess(out[i].Domain, out[j].Domain) })
	return out
}

// addGateway adds gw to the sorted list gws.
func addGateway(gws []string, gw string) []string {
	i, found := slices.BinarySearch(gws, gw)
	if found {
		return gws
	}
	return slices.Insert(gws, i, gw)
}
