package push

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	pb "causeway.dev/causeway/api/push/v1alpha1"
	"causeway.dev/causeway/internal/ir"
)

// snapshot is one IR cut into resources, shared read-only by every group.
type snapshot struct {
	version   string // the IR's version
	listeners []*listenerRes
	clusters  map[string]*pb.Resource // by IR cluster name
	// gateways is the version of each Gateway's part (gatewayVersions).
	gateways map[string]string
}

type listenerRes struct {
	res      *pb.Resource
	gateways []string
	clusters []string // IR names of the clusters its routes reference
	// For a TLS listener shared by several Gateways: the listener, the
	// Gateways owning each of its certificates (nil when unknown), and
	// the resources cut for the groups that serve only some of them.
	ir       *ir.Listener
	owners   [][]string
	variants map[string]variant // by groupKey; guarded by Server.mu
}

// variant is a shared listener cut for the proxies of some of its
// Gateways, with the clusters its remaining routes reference.
type variant struct {
	res      *pb.Resource
	clusters []string
}

// newSnapshot encodes cfg. Resources whose version is unchanged since prev
// are taken from prev, so that streams and views keep sharing them.
// owners attributes the listeners' certificates to Gateways (see Owners).
func newSnapshot(cfg *ir.Config, prev *snapshot, owners Owners) (*snapshot, error) {
	s := &snapshot{version: cfg.Version, clusters: make(map[string]*pb.Resource, len(cfg.Clusters))}
	old := map[string]*pb.Resource{}
	if prev != nil {
		for _, l := range prev.listeners {
			old[l.res.Name] = l.res
		}
	}
	for _, l := range cfg.Listeners {
		if l == nil {
			continue
		}
		r, err := EncodeListener(l)
		if err != nil {
			return nil, err
		}
		if o := old[r.Name]; o != nil && o.Version == r.Version {
			r = o
		}
		lr := &listenerRes{res: r, gateways: l.Gateways, clusters: referenced(l)}
		if len(l.Gateways) > 1 {
			lr.ir = l
		}
		if len(l.Gateways) > 1 && l.TLS != nil && len(l.TLS.Certificates) > 0 {
			for _, c := range l.TLS.Certificates {
				var o []string
				if c != nil {
					o = owners[c.Origin]
				}
				lr.owners = append(lr.owners, o)
			}
		}
		s.listeners = append(s.listeners, lr)
	}
	for _, c := range cfg.Clusters {
		if c == nil {
			continue
		}
		r, err := EncodeCluster(c)
		if err != nil {
			return nil, err
		}
		if prev != nil {
			if o := prev.clusters[c.Name]; o != nil && o.Version == r.Version {
				r = o
			}
		}
		s.clusters[c.Name] = r
	}
	s.gateways = gatewayVersions(s)
	return s, nil
}

// referenced lists the clusters a listener's routes send traffic to.
func referenced(l *ir.Listener) []string {
	var out []string
	for _, vh := range l.VirtualHosts {
		for _, r := range vh.Routes {
			for _, b := range r.Backends {
				if b != nil && b.Cluster != "" {
					out = append(out, b.Cluster)
				}
			}
			for _, m := range r.Mirrors {
				if m != nil && m.Cluster != "" {
					out = append(out, m.Cluster)
				}
			}
		}
	}
	for _, r := range l.L4Routes {
		for _, b := range r.Backends {
			if b != nil && b.Cluster != "" {
				out = append(out, b.Cluster)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// view is what one group of proxies (those serving the same Gateways)
// should hold: immutable once built, shared by the group's streams.
type view struct {
	version string
	res     map[string]*pb.Resource // by resource name
	// prev is the version this view was diffed against; changed and
	// removed are that diff, so that a stream which acknowledged prev
	// needs no diff of its own.
	prev    string
	changed []*pb.Resource
	removed []string
	// full (every resource: a proxy's first sync) and delta (changed and
	// removed) encoded once for all the group's streams.
	full, delta encoded
}

// fullBody is the encoded Response that brings an empty proxy to v.
func (v *view) fullBody() ([]byte, error) {
	return v.full.get(func() *pb.Response {
		all, _ := diff(nil, v.res)
		return &pb.Response{Version: v.version, Resources: all}
	})
}

// deltaBody is the encoded Response that brings a proxy at v.prev to v.
func (v *view) deltaBody() ([]byte, error) {
	return v.delta.get(func() *pb.Response {
		return &pb.Response{Version: v.version, Resources: v.changed, Removed: v.removed}
	})
}

// filter builds the view of the proxies serving gateways: the listeners
// used by one of them and the clusters those listeners' routes reference.
// A listener shared with Gateways the proxies do not serve is sent without
// the certificates those other Gateways own (see forGroup).
func (s *snapshot) filter(gateways []string, prev *view) *view {
	v := &view{res: map[string]*pb.Resource{}}
	for _, l := range s.listeners {
		if !intersects(l.gateways, gateways) {
			continue
		}
		r, clusters := l.forGroup(gateways)
		if r == nil {
			continue
		}
		v.res[r.Name] = r
		for _, c := range clusters {
			if r := s.clusters[c]; r != nil {
				v.res[r.Name] = r
			}
		}
	}
	v.version = setVersion(v.res)
	if prev != nil {
		if prev.version == v.version {
			return prev
		}
		v.prev = prev.version
		v.changed, v.removed = diff(prev.res, v.res)
	}
	return v
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// setVersion hashes the names and versions of a resource set.
func setVersion(res map[string]*pb.Resource) string {
	names := make([]string, 0, len(res))
	for n := range res {
		names = append(names, n)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write([]byte(res[n].Version))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// diff returns the resources of want whose version differs from have's
// (sorted by name) and the names in have missing from want (sorted).
func diff(have, want map[string]*pb.Resource) (changed []*pb.Resource, removed []string) {
	for n, r := range want {
		if h, ok := have[n]; !ok || h.Version != r.Version {
			changed = append(changed, r)
		}
	}
	for n := range have {
		if _, ok := want[n]; !ok {
			removed = append(removed, n)
		}
	}
	slices.SortFunc(changed, func(a, b *pb.Resource) int { return strings.Compare(a.Name, b.Name) })
	slices.Sort(removed)
	return changed, removed
}

// groupKey identifies the proxies serving the same set of Gateways.
func groupKey(gateways []string) string {
	g := slices.Clone(gateways)
	slices.Sort(g)
	return strings.Join(slices.Compact(g), ",")
}
