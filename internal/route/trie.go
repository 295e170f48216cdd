package route

import (
	"hash/maphash"
	"sort"
	"strings"
)

// trie indexes the Exact and PathPrefix routes of a virtual host by path
// segment. It is built with pointers (builder) and then frozen into flat
// arrays, so that a step down the trie touches one or two cache lines
// however many routes there are. Siblings are adjacent (breadth-first
// order), so a node with few children is searched by looking at them;
// children of other nodes are found in an open-addressing table keyed by
// (parent, segment). Both compare the first eight bytes of the segment held
// inline, so short segments compare without following a pointer. The hash
// is seeded per table, so clients cannot aim collisions.
type trie struct {
	nodes []tnode // nodes[0] is the root, "/"
	slots []slot  // children of nodes with more than maxLinear; power-of-two length, at most half full
	seed  maphash.Seed
	lists []int32 // route positions, each list ascending
}

// tnode is one segment: the root stands for "/", its children for "/a",
// and so on. Values are normalised, so no segment is empty.
type tnode struct {
	word       uint64 // word(seg)
	seg        string
	prefix     span  // PathPrefix routes whose value ends here
	exact      span  // Exact routes whose value ends here ("/a")
	exactSlash span  // Exact routes ending here with a slash ("/a/"; "/" at the root)
	first      int32 // children are nodes[first : first+kids]
	kids       int32
	_          [8]byte // to 64 bytes: one node, one cache line
}

// maxLinear is the most children searched by looking at each.
const maxLinear = 2

// is reports whether n's segment is seg, whose word is w.
func (n *tnode) is(seg string, w uint64) bool {
	// Equal first eight bytes and lengths settle short segments; longer
	// ones compare the rest.
	return n.word == w && len(n.seg) == len(seg) && (len(seg) <= 8 || n.seg[8:] == seg[8:])
}

// span is a list of n route positions: lists[off : off+n], or, when n is
// 1, the position off itself, sparing a cache line for the common case.
type span struct{ off, n int32 }

// slot is one entry of the child table; node 0 (the root, never a child)
// marks an empty slot.
type slot struct {
	word   uint64 // first eight bytes of the segment, little-endian, zero-padded
	parent int32
	node   int32
}

// child returns the index of the child of node parent for seg, or -1.
func (t *trie) child(parent int32, seg string) int32 {
	p := &t.nodes[parent]
	if p.kids == 0 {
		return -1
	}
	w := word(seg)
	if p.kids <= maxLinear {
		for c := p.first; c < p.first+p.kids; c++ {
			if t.nodes[c].is(seg, w) {
				return c
			}
		}
		return -1
	}
	mask := uint64(len(t.slots) - 1)
	for i := t.hash(parent, seg) & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.node == 0 {
			return -1
		}
		if s.word == w && s.parent == parent && t.nodes[s.node].is(seg, w) {
			return s.node
		}
	}
}

func (t *trie) hash(parent int32, seg string) uint64 {
	return maphash.String(t.seed, seg) + uint64(parent)*0x9e3779b97f4a7c15
}

func word(s string) uint64 {
	var w uint64
	for i := 0; i < len(s) && i < 8; i++ {
		w |= uint64(s[i]) << (8 * i)
	}
	return w
}

// builder is the mutable trie Compile fills.
type builder struct {
	prefix, exact, exactSlash []int32
	children                  map[string]*builder
}

// at returns the node for p ("/a/b": normalised, not "/", no trailing
// slash), creating it and its parents.
func (b *builder) at(p string) *builder {
	for _, seg := range strings.Split(p[1:], "/") {
		child := b.children[seg]
		if child == nil {
			if b.children == nil {
				b.children = map[string]*builder{}
			}
			child = &builder{}
			b.children[seg] = child
		}
		b = child
	}
	return b
}

// freeze lays the builder out breadth first, so that siblings are
// adjacent, and fills the child table.
func (b *builder) freeze() trie {
	t := trie{seed: maphash.MakeSeed()}
	type item struct {
		b      *builder
		seg    string
		parent int32
	}
	queue := []item{{b: b, parent: -1}}
	addList := func(l []int32) span {
		if len(l) == 1 {
			return span{off: l[0], n: 1}
		}
		s := span{off: int32(len(t.lists)), n: int32(len(l))}
		t.lists = append(t.lists, l...)
		return s
	}
	for i := 0; i < len(queue); i++ {
		it := queue[i]
		t.nodes = append(t.nodes, tnode{
			word: word(it.seg), seg: it.seg,
			prefix: addList(it.b.prefix), exact: addList(it.b.exact), exactSlash: addList(it.b.exactSlash),
			first: int32(len(queue)), kids: int32(len(it.b.children)),
		})
		segs := make([]string, 0, len(it.b.children))
		for seg := range it.b.children {
			segs = append(segs, seg)
		}
		sort.Strings(segs)
		for _, seg := range segs {
			queue = append(queue, item{b: it.b.children[seg], seg: seg, parent: int32(i)})
		}
	}
	hashed := 0
	for _, it := range queue[1:] {
		if t.nodes[it.parent].kids > maxLinear {
			hashed++
		}
	}
	if hashed > 0 {
		size := 16
		for size < 2*hashed {
			size *= 2
		}
		t.slots = make([]slot, size)
		mask := uint64(size - 1)
		for i, it := range queue {
			if i == 0 || t.nodes[it.parent].kids <= maxLinear {
				continue
			}
			j := t.hash(it.parent, it.seg) & mask
			for t.slots[j].node != 0 {
				j = (j + 1) & mask
			}
			t.slots[j] = slot{word: word(it.seg), parent: it.parent, node: int32(i)}
		}
	}
	return t
}
