package upstream

import (
	"cmp"
	"slices"
	"strconv"
)

// Consistent hashing. Hashes are FNV-1a finished with a 64-bit mixer:
// deterministic across processes, so every replica of the proxy maps a key
// to the same endpoint, and endpoints' positions depend only on their
// addresses, so adding or removing one moves only the keys it takes or
// gives.

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// mix is the splitmix64 finaliser: FNV alone leaves low bits poorly mixed.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func hashString(s string) uint64 { return mix(fnvString(fnvOffset, s)) }

// ring is a ketama-style hash ring: each endpoint owns points in
// proportion to its weight, and a key belongs to the first point at or
// after its hash.
type ring struct {
	ms     []*member
	points []uint64 // sorted
	owners []int32  // index into ms, parallel to points
}

// Ring size: ringPerEndpoint points per endpoint of average weight, at
// most ringMax in all. The count per endpoint does not depend on how many
// there are (below the cap), so adding one moves only the keys it takes.
const (
	ringPerEndpoint = 100
	ringMax         = 1 << 20
)

func newRing(ms []*member, ws []uint64) *ring {
	size := min(len(ms)*ringPerEndpoint, ringMax)
	var total float64
	for _, w := range ws {
		total += float64(w)
	}
	type point struct {
		h uint64
		o int32
	}
	pts := make([]point, 0, size+len(ms))
	var buf []byte
	for i, mb := range ms {
		n := max(int(float64(size)*float64(ws[i])/total+0.5), 1)
		for j := range n {
			buf = append(append(buf[:0], mb.ep.addr...), '_')
			buf = strconv.AppendInt(buf, int64(j), 10)
			pts = append(pts, point{hashString(string(buf)), int32(i)})
		}
	}
	slices.SortFunc(pts, func(a, b point) int { return cmp.Compare(a.h, b.h) })
	r := &ring{ms: ms, points: make([]uint64, len(pts)), owners: make([]int32, len(pts))}
	for i, p := range pts {
		r.points[i], r.owners[i] = p.h, p.o
	}
	return r
}

func (r *ring) pick(h uint64) *member {
	lo, hi := 0, len(r.points)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r.points[mid] < h {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == len(r.points) {
		lo = 0
	}
	return r.ms[r.owners[lo]]
}

// maglev is Google's Maglev lookup table (Eisenbud et al., NSDI 2016),
// weighted: each endpoint fills table slots along its own permutation, a
// heavier endpoint taking turns more often.
type maglev struct {
	ms    []*member
	table []int32
}

// maglevSizes are primes; the table is the first at least
// maglevPerEndpoint times the endpoint count (or the largest).
var maglevSizes = []uint64{65537, 131071, 262147, 524287, 1048573}

const maglevPerEndpoint = 100

func newMaglev(ms []*member, ws []uint64) *maglev {
	size := maglevSizes[len(maglevSizes)-1]
	for _, s := range maglevSizes {
		if s >= uint64(len(ms))*maglevPerEndpoint {
			size = s
			break
		}
	}
	n := len(ms)
	offset := make([]uint64, n)
	skip := make([]uint64, n)
	next := make([]uint64, n)
	target := make([]uint64, n)
	g, wmax := uint64(0), uint64(0)
	for _, w := range ws {
		g = gcd(g, w)
	}
	weights := make([]uint64, n)
	for i, mb := range ms {
		h := fnvString(fnvOffset, mb.ep.addr)
		offset[i] = mix(h) % size
		skip[i] = mix(h^0x9e3779b97f4a7c15)%(size-1) + 1
		weights[i] = ws[i] / g
		wmax = max(wmax, weights[i])
	}
	table := make([]int32, size)
	for i := range table {
		table[i] = -1
	}
	filled := uint64(0)
	for turn := uint64(1); filled < size; turn++ {
		for i := 0; i < n && filled < size; i++ {
			// An endpoint of weight wmax fills a slot every turn, one of
			// weight wmax/k every k turns.
			if turn*weights[i] < target[i] {
				continue
			}
			target[i] += wmax
			c := (offset[i] + skip[i]*next[i]) % size
			for table[c] >= 0 {
				next[i]++
				c = (offset[i] + skip[i]*next[i]) % size
			}
			table[c] = int32(i)
			next[i]++
			filled++
		}
	}
	return &maglev{ms: ms, table: table}
}

func (m *maglev) pick(h uint64) *member { return m.ms[m.table[h%uint64(len(m.table))]] }
