package upstream

import (
	"math/bits"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"causeway.dev/causeway/internal/ir"
)

// picker chooses the endpoint for a request. Implementations are immutable
// snapshots, rebuilt whenever the set of endpoints taking traffic or their
// weights change, and safe for concurrent use; pick neither locks nor
// allocates. hash is the request's consistent-hash key (a random value
// when the request has none); other policies ignore it. pick never returns
// nil: a picker is only built over at least one member.
type picker interface {
	pick(hash uint64) *member
}

// newPicker builds the picker of policy over ms with effective weights ws.
func newPicker(policy ir.LBPolicy, ms []*member, ws []uint64) picker {
	switch policy {
	case ir.LBRandom:
		return &random{newWeighted(ms, ws)}
	case ir.LBLeastRequest:
		return &leastRequest{newWeighted(ms, ws)}
	case ir.LBRingHash:
		return newRing(ms, ws)
	case ir.LBMaglev:
		return newMaglev(ms, ws)
	}
	return newRoundRobin(ms, ws)
}

// weighted maps points of [0, total) to members by cumulative weight.
type weighted struct {
	ms    []*member
	cum   []uint64 // nil when all weights are equal
	total uint64
}

func newWeighted(ms []*member, ws []uint64) weighted {
	w := weighted{ms: ms, total: uint64(len(ms))}
	g := uint64(0)
	for _, x := range ws {
		g = gcd(g, x)
	}
	if g == 0 || allEqual(ws) {
		return w
	}
	w.cum = make([]uint64, len(ws))
	w.total = 0
	for i, x := range ws {
		w.total += x / g
		w.cum[i] = w.total
	}
	return w
}

// at returns the member owning point x < total.
func (w *weighted) at(x uint64) *member {
	if w.cum == nil {
		return w.ms[x]
	}
	lo, hi := 0, len(w.cum)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if w.cum[mid] > x {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return w.ms[lo]
}

func (w *weighted) random() *member { return w.at(rand.Uint64N(w.total)) }

// roundRobin visits the points of [0, total) in a fixed permutation,
// x·stride mod total with stride coprime to total, so that every cycle of
// total picks gives each member exactly its weight, interleaved.
type roundRobin struct {
	weighted
	stride uint64
	next   atomic.Uint64
}

func newRoundRobin(ms []*member, ws []uint64) *roundRobin {
	r := &roundRobin{weighted: newWeighted(ms, ws), stride: 1}
	if r.total > 2 {
		// Near the golden ratio the permutation spreads consecutive picks.
		r.stride = max(uint64(float64(r.total)*0.6180339887), 1)
		for gcd(r.stride, r.total) != 1 {
			r.stride++
		}
	}
	r.next.Store(rand.Uint64N(r.total)) // rebuilt pickers do not all restart at the first endpoint
	return r
}

func (r *roundRobin) pick(uint64) *member {
	n := (r.next.Add(1) - 1) % r.total
	if r.cum == nil {
		return r.ms[n]
	}
	hi, lo := bits.Mul64(n, r.stride)
	_, x := bits.Div64(hi, lo, r.total) // hi < total since n, stride < total
	return r.at(x)
}

type random struct{ weighted }

func (r *random) pick(uint64) *member { return r.random() }

// leastRequest is the power of two choices: of two endpoints drawn by
// weight, the one with fewer requests in flight.
type leastRequest struct{ weighted }

func (l *leastRequest) pick(uint64) *member {
	n := uint64(len(l.ms))
	if n == 1 {
		return l.ms[0]
	}
	var a, b *member
	if l.cum == nil { // two distinct endpoints
		i, j := rand.Uint64N(n), rand.Uint64N(n-1)
		if j >= i {
			j++
		}
		a, b = l.ms[i], l.ms[j]
	} else {
		a, b = l.random(), l.random()
	}
	if b.active.Load() < a.active.Load() {
		return b
	}
	return a
}

// choose picks the member for req. With a hash cookie the request lacks,
// cookie is the one to set on the response.
func (st *clusterState) choose(req *http.Request) (mb *member, hash uint64, cookie *http.Cookie) {
	p := st.picker
	if p == nil {
		return nil, 0, nil
	}
	if st.keys != nil {
		var ok bool
		if hash, ok, cookie = hashRequest(st.keys, req); !ok {
			hash = rand.Uint64()
		}
	}
	return p.pick(hash), hash, cookie
}

// repick chooses another member than prev after a connect failure, nil
// when it finds none.
func (st *clusterState) repick(prev *member, hash uint64) *member {
	for i := range uint64(3) {
		if mb := st.picker.pick(mix(hash + i + 1)); mb != prev {
			return mb
		}
	}
	return nil
}

// hashKind is the source of a hash key.
type hashKind uint8

const (
	hashHeader hashKind = iota
	hashCookie
	hashSourceIP
	hashQuery
)

type hashKey struct {
	kind   hashKind
	name   string // canonical header name, cookie or query parameter name
	path   string // cookie attributes
	maxAge int
}

// compileKeys prepares a hash policy; nil for none.
func compileKeys(hs []ir.HashKey) []hashKey {
	var ks []hashKey
	for _, h := range hs {
		switch {
		case h.Header != "":
			ks = append(ks, hashKey{kind: hashHeader, name: http.CanonicalHeaderKey(h.Header)})
		case h.Cookie != nil:
			ks = append(ks, hashKey{kind: hashCookie, name: h.Cookie.Name, path: h.Cookie.Path,
				maxAge: int(time.Duration(h.Cookie.TTL) / time.Second)})
		case h.SourceIP:
			ks = append(ks, hashKey{kind: hashSourceIP})
		case h.QueryParam != "":
			ks = append(ks, hashKey{kind: hashQuery, name: h.QueryParam})
		}
	}
	if ks == nil {
		ks = []hashKey{} // hashed policy without keys: random per request
	}
	return ks
}

// hashRequest hashes the first key present in req. A cookie key the
// request lacks is created: its value keys this request and cookie is
// returned for the response, so the client's next requests carry it.
// Header values are hashed as sent; query parameters and cookies raw (not
// unescaped).
func hashRequest(ks []hashKey, req *http.Request) (hash uint64, ok bool, cookie *http.Cookie) {
	for i := range ks {
		k := &ks[i]
		switch k.kind {
		case hashHeader:
			if vv := req.Header[k.name]; len(vv) > 0 {
				h := uint64(fnvOffset)
				for _, v := range vv {
					h = fnvString(h, v)
					h = (h ^ ',') * fnvPrime
				}
				return mix(h), true, nil
			}
		case hashCookie:
			if v, found := cookieValue(req.Header["Cookie"], k.name); found {
				return hashString(v), true, nil
			}
			v := strconv.FormatUint(rand.Uint64(), 16)
			return hashString(v), true, &http.Cookie{Name: k.name, Value: v, Path: k.path, MaxAge: k.maxAge, HttpOnly: true}
		case hashSourceIP:
			if ip := hostOf(req.RemoteAddr); ip != "" {
				return hashString(ip), true, nil
			}
		case hashQuery:
			if v, found := queryValue(req.URL.RawQuery, k.name); found {
				return hashString(v), true, nil
			}
		}
	}
	return 0, false, nil
}

// cookieValue finds a cookie in Cookie header lines without allocating.
func cookieValue(lines []string, name string) (string, bool) {
	for _, s := range lines {
		for len(s) > 0 {
			var part string
			if i := strings.IndexByte(s, ';'); i >= 0 {
				part, s = s[:i], s[i+1:]
			} else {
				part, s = s, ""
			}
			part = strings.TrimSpace(part)
			if len(part) > len(name) && part[len(name)] == '=' && part[:len(name)] == name {
				v := part[len(name)+1:]
				if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				return v, true
			}
		}
	}
	return "", false
}

// queryValue finds the first value of a parameter in a raw query.
func queryValue(q, name string) (string, bool) {
	for len(q) > 0 {
		var part string
		if i := strings.IndexByte(q, '&'); i >= 0 {
			part, q = q[:i], q[i+1:]
		} else {
			part, q = q, ""
		}
		if len(part) >= len(name) && part[:len(name)] == name {
			if len(part) == len(name) {
				return "", true
			}
			if part[len(name)] == '=' {
				return part[len(name)+1:], true
			}
		}
	}
	return "", false
}

// hostOf strips the port (and brackets) from "host:port".
func hostOf(addr string) string {
	i := len(addr) - 1
	for i >= 0 && addr[i] != ':' {
		i--
	}
	if i < 0 {
		return addr
	}
	h := addr[:i]
	if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	return h
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func allEqual(ws []uint64) bool {
	for _, w := range ws {
		if w != ws[0] {
			return false
		}
	}
	return true
}
