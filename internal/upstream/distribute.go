package upstream

import (
	"math/bits"
	"strings"
	"sync/atomic"
	"time"

	"causeway.dev/causeway/internal/ir"
)

// Weighted locality distribution (ir.LoadBalancer.LocalityDistribute), the
// alternative to failover by priority (locality.go). Like failover it is
// decided when a snapshot is rebuilt; per request it costs one atomic add
// and a scan of a few cumulative weights.
//
// The rule used is the one whose From matches the proxy's own
// Options.Region/Zone most specifically (see specificity); none matching
// means failover. Under a rule, every healthy endpoint joins the bucket of
// the most specific To locality it matches (none: it takes no traffic).
// Buckets without a healthy endpoint, or of weight 0, drop out and the
// others share the traffic in proportion to their weights. A request picks
// a bucket, then an endpoint of the bucket with the cluster's picker. When
// no bucket is left, failover and panic apply to the whole cluster.

// distribution is the rule that applies to this proxy, compiled.
type distribution struct {
	to []locPattern
}

// locPattern is a "region/zone" pattern with its weight; "*" parts match
// anything.
type locPattern struct {
	region, zone string
	weight       uint64
}

func parseLocality(s string) locPattern {
	if s == "*" {
		return locPattern{region: "*", zone: "*"}
	}
	r, z, _ := strings.Cut(s, "/")
	return locPattern{region: r, zone: z}
}

func (p *locPattern) matches(region, zone string) bool {
	return (p.region == "*" || p.region == region) && (p.zone == "*" || p.zone == zone)
}

// specificity ranks patterns: a zone named counts more than a region
// named, so "r/z" > "*/z" > "r/*" > "*/*".
func (p *locPattern) specificity() int {
	s := 0
	if p.region != "*" {
		s++
	}
	if p.zone != "*" {
		s += 2
	}
	return s
}

// distributionFor returns the rule of ds for this proxy, nil for none.
func (m *Manager) distributionFor(ds []ir.LocalityDistribution) *distribution {
	best, bestSpec := -1, -1
	for i := range ds {
		p := parseLocality(ds[i].From)
		if s := p.specificity(); p.matches(m.opts.Region, m.opts.Zone) && s > bestSpec {
			best, bestSpec = i, s
		}
	}
	if best < 0 {
		return nil
	}
	d := &distribution{}
	for _, w := range ds[best].To {
		p := parseLocality(w.Locality)
		p.weight = uint64(max(w.Weight, 0))
		d.to = append(d.to, p)
	}
	return d
}

// bucket returns the index of the most specific pattern matching an
// endpoint's locality, -1 for none.
func (d *distribution) bucket(region, zone string) int {
	best, bestSpec := -1, -1
	for i := range d.to {
		if s := d.to[i].specificity(); s > bestSpec && d.to[i].matches(region, zone) {
			best, bestSpec = i, s
		}
	}
	return best
}

// distributeLocked builds the picker of c's distribution rule over its
// healthy endpoints; nil when c has no rule or no bucket is left. c.mu
// held.
func (c *Cluster) distributeLocked(now time.Time) picker {
	d := c.dist
	if d == nil {
		return nil
	}
	groups := make([][]*member, len(d.to))
	for _, mb := range c.members {
		if !mb.up() {
			continue
		}
		if i := d.bucket(mb.region, mb.zone); i >= 0 && d.to[i].weight > 0 {
			groups[i] = append(groups[i], mb)
		}
	}
	var subs []picker
	var ws []uint64
	for i, g := range groups {
		if len(g) > 0 {
			subs = append(subs, newPicker(c.lb.Policy, g, c.weightsLocked(g, now)))
			ws = append(ws, d.to[i].weight)
		}
	}
	switch len(subs) {
	case 0:
		return nil
	case 1:
		return subs[0]
	}
	return newLocalityPicker(subs, ws, c.lb.Policy == ir.LBRingHash || c.lb.Policy == ir.LBMaglev)
}

// localityPicker picks a bucket by weight, then an endpoint with the
// bucket's own picker. Round robin over the buckets visits the points of
// [0, total) in a fixed permutation (as roundRobin does), so every total
// picks give each bucket exactly its weight; hashing policies choose the
// bucket from the key instead, so a key keeps its endpoint.
type localityPicker struct {
	subs   []picker
	cum    []uint64
	total  uint64
	stride uint64
	hashed bool
	next   atomic.Uint64
}

// localitySalt decorrelates the bucket choice from the endpoint choice,
// which hashes the same key.
const localitySalt = 0x6a09e667f3bcc909

func newLocalityPicker(subs []picker, ws []uint64, hashed bool) *localityPicker {
	l := &localityPicker{subs: subs, cum: make([]uint64, len(ws)), hashed: hashed, stride: 1}
	for i, w := range ws {
		l.total += w
		l.cum[i] = l.total
	}
	if l.total > 2 {
		l.stride = max(uint64(float64(l.total)*0.6180339887), 1)
		for gcd(l.stride, l.total) != 1 {
			l.stride++
		}
	}
	return l
}

func (l *localityPicker) pick(h uint64) *member {
	var x uint64
	if l.hashed {
		x = mix(h^localitySalt) % l.total
	} else {
		n := (l.next.Add(1) - 1) % l.total
		hi, lo := bits.Mul64(n, l.stride)
		_, x = bits.Div64(hi, lo, l.total) // hi < total since n, stride < total
	}
	i := 0
	for l.cum[i] <= x {
		i++
	}
	return l.subs[i].pick(h)
}
