package upstream

// Locality-aware endpoint selection, applied each time a cluster's
// snapshot is rebuilt (never per request): failover by priority, used
// unless a weighted distribution rule applies (distribute.go).
//
// Endpoints fall into three priorities against the proxy's
// Options.Zone/Region: 0 the same zone (and region, when both name one),
// 1 the same region, 2 the rest; without a locality of its own everything
// is priority 0. An endpoint is healthy when its active health check
// passes and outlier detection has not ejected it. Then:
//
//  1. The first non-empty priority whose healthy share is at least
//     LocalityFailoverThreshold percent (default 70) takes all the
//     traffic, over its healthy endpoints.
//  2. Otherwise, if fewer than the panic threshold (OutlierDetection's
//     PanicThreshold, default 50, 0 disables) percent of all endpoints
//     are healthy, the cluster panics: all endpoints take traffic, healthy
//     or not, since refusing everything is worse than trying.
//  3. Otherwise the healthy endpoints of every priority share the traffic.
//
// With no healthy endpoint and panic disabled, requests fail with
// ErrNoEndpoint.

// selectLocked returns the members that take traffic now. c.mu held.
func (c *Cluster) selectLocked() (chosen []*member, panicking bool) {
	var total, healthy [3]int
	for _, mb := range c.members {
		total[mb.prio]++
		if mb.up() {
			healthy[mb.prio]++
		}
	}
	thr := c.m.opts.LocalityFailoverThreshold
	for p := range total {
		if total[p] > 0 && healthy[p] > 0 && healthy[p]*100 >= thr*total[p] {
			return c.filterLocked(func(mb *member) bool { return mb.prio == p && mb.up() }), false
		}
	}
	var all, up int
	for p := range total {
		all += total[p]
		up += healthy[p]
	}
	if all == 0 {
		return nil, false
	}
	if c.panicPct > 0 && up*100 < c.panicPct*all {
		return c.members, true
	}
	return c.filterLocked((*member).up), false
}

func (c *Cluster) filterLocked(keep func(*member) bool) []*member {
	var out []*member
	for _, mb := range c.members {
		if keep(mb) {
			out = append(out, mb)
		}
	}
	return out
}
