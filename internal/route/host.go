package route

import (
	"hash/maphash"
	"strings"
)

// maxHost bounds the host names worth looking up: a DNS name has at most 253
// characters, plus a trailing dot. Longer hosts can only match "*".
const maxHost = 254

// host selects the virtual host for a Host header: port removed, letter
// case and a trailing dot ignored; an exact domain first, then the longest
// wildcard, then "*". It returns nil if none.
func (t *Table[T]) host(h string) *vhost[T] {
	i := t.hostIndex(h)
	if i < 0 {
		return nil
	}
	return &t.hosts[i]
}

func (t *Table[T]) hostIndex(h string) int32 {
	if t.exact.empty() && t.wild.empty() {
		return t.any
	}
	h = strings.TrimSuffix(StripPort(h), ".")
	if len(h) > maxHost {
		return t.any
	}
	upper := false
	for i := 0; i < len(h); i++ {
		if 'A' <= h[i] && h[i] <= 'Z' {
			upper = true
			break
		}
	}
	if !upper {
		if i := t.exact.find(h); i >= 0 {
			return i
		}
		if !t.wild.empty() {
			// "*.example.com" is stored as ".example.com"; the first
			// dot gives the longest suffix, and i > 0 keeps at least
			// one label in place of the star.
			for i := 1; i < len(h); i++ {
				if h[i] == '.' {
					if v := t.wild.find(h[i:]); v >= 0 {
						return v
					}
				}
			}
		}
		return t.any
	}
	// The same on a lower-cased copy in a stack buffer.
	var buf [maxHost]byte
	b := buf[:copy(buf[:], h)]
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	if i := t.exact.findBytes(b); i >= 0 {
		return i
	}
	if !t.wild.empty() {
		for i := 1; i < len(b); i++ {
			if b[i] == '.' {
				if v := t.wild.findBytes(b[i:]); v >= 0 {
					return v
				}
			}
		}
	}
	return t.any
}

// StripPort removes ":port" from a host, keeping IPv6 literals ("[::1]:80"
// gives "[::1]"). A bare IPv6 address (several colons, no brackets) is
// kept whole.
func StripPort(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i >= 0 {
			return h[:i+1]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h[:i], ':') < 0 {
		return h[:i]
	}
	return h
}

// hostTable maps domains to virtual hosts: an open-addressing table whose
// keys live in one string, so that a lookup touches one slot and a small,
// usually cached, block of key bytes rather than a scattered string per
// entry. The hash is seeded per table.
type hostTable struct {
	slots []hostSlot // power-of-two length, at most half full; nil if empty
	keys  string     // every key, back to back
	seed  maphash.Seed
}

type hostSlot struct {
	hash     uint64
	off, len int32 // the key is keys[off : off+len]
	host     int32 // index in Table.hosts, plus one; 0 marks a free slot
}

func newHostTable(keys []string, hosts []int32) hostTable {
	ht := hostTable{keys: strings.Join(keys, ""), seed: maphash.MakeSeed()}
	if len(keys) == 0 {
		return ht
	}
	size := 8
	for size < 2*len(keys) {
		size *= 2
	}
	ht.slots = make([]hostSlot, size)
	mask := uint64(size - 1)
	off := 0
	for i, k := range keys {
		h := maphash.String(ht.seed, k)
		j := h & mask
		for ht.slots[j].host != 0 {
			j = (j + 1) & mask
		}
		ht.slots[j] = hostSlot{hash: h, off: int32(off), len: int32(len(k)), host: hosts[i] + 1}
		off += len(k)
	}
	return ht
}

func (ht *hostTable) empty() bool { return ht.slots == nil }

// find returns the host index for key k, or -1.
func (ht *hostTable) find(k string) int32 {
	if ht.slots == nil {
		return -1
	}
	h := maphash.String(ht.seed, k)
	mask := uint64(len(ht.slots) - 1)
	for j := h & mask; ; j = (j + 1) & mask {
		s := &ht.slots[j]
		if s.host == 0 {
			return -1
		}
		if s.hash == h && ht.keys[s.off:s.off+s.len] == k {
			return s.host - 1
		}
	}
}

// findBytes is find for a key in a byte slice; it does not allocate.
func (ht *hostTable) findBytes(k []byte) int32 {
	if ht.slots == nil {
		return -1
	}
	h := maphash.Bytes(ht.seed, k)
	mask := uint64(len(ht.slots) - 1)
	for j := h & mask; ; j = (j + 1) & mask {
		s := &ht.slots[j]
		if s.host == 0 {
			return -1
		}
		if s.hash == h && ht.keys[s.off:s.off+s.len] == string(k) {
			return s.host - 1
		}
	}
}
