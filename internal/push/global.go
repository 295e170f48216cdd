package push

import (
	"cmp"
	"slices"

	pb "causeway.dev/causeway/api/push/v1alpha1"
)

// Several control-plane replicas may serve the proxies of one Gateway,
// each with its own connections. What a Gateway's status says about its
// fleet must then be the sum of every replica's GatewayFleet, computed the
// same way by each, or replicas writing status would undo one another.
// Replicas agree on what "current" means by the Gateway's version: a hash
// of the contents of the resources its proxies receive, which depends on
// nothing but the translated resources (not on the IR's version string,
// the order of inputs, or when a replica started).

// gatewayVersions hashes, for each Gateway of s, the names and content
// versions of its listeners (whole, with every certificate of a shared
// socket) and of the clusters their routes reference.
func gatewayVersions(s *snapshot) map[string]string {
	parts := map[string]map[string]*pb.Resource{}
	for _, l := range s.listeners {
		for _, g := range l.gateways {
			p := parts[g]
			if p == nil {
				p = map[string]*pb.Resource{}
				parts[g] = p
			}
			p[l.res.Name] = l.res
			for _, c := range l.clusters {
				if r := s.clusters[c]; r != nil {
					p[r.Name] = r
				}
			}
		}
	}
	out := make(map[string]string, len(parts))
	for g, p := range parts {
		out[g] = setVersion(p)
	}
	return out
}

// GatewayVersions returns the version of each Gateway's part of the
// configuration being streamed, by Gateway ("namespace/name"); replicas
// that translated the same resources return the same versions. The map
// is shared: do not modify it.
func (s *Server) GatewayVersions() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap == nil {
		return nil
	}
	return s.snap.gateways
}

// Merge sums the fleets of several control-plane replicas, by Gateway.
// current is this replica's GatewayVersions: an entry of another version
// (a replica that has not translated the latest resources yet, or this
// one lagging) counts its proxies as connected with the configuration in
// flight, neither acked nor refused. The result's Versions are current's.
// A nil current (this replica has streamed nothing yet: it has just
// started) takes every entry at its word, so that a starting replica
// writes what the others do rather than undoing it. Merge is commutative:
// replicas holding the same fleets and versions compute the same result,
// whatever their order.
func Merge(current map[string]string, fleets ...map[string]GatewayFleet) map[string]GatewayFleet {
	out := map[string]GatewayFleet{}
	for _, fl := range fleets {
		for g, f := range fl {
			m := out[g]
			m.Version = current[g]
			m.Proxies += f.Proxies
			if current == nil || (f.Version != "" && f.Version == m.Version) {
				m.Acked += f.Acked
				m.Nacked += f.Nacked
				m.Nack = leastNack(m.Nack, f.Nack)
			}
			out[g] = m
		}
	}
	return out
}

// leastNack picks one of two refusal messages independently of their
// order ("" is none).
func leastNack(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return min(a, b)
}

// MergeStatus merges the proxy tables of several control-plane replicas:
// every proxy, sorted by id then by the replica it is connected to.
// Version is the replicas' common IR version, or "" when they differ.
func MergeStatus(reps ...StatusReport) StatusReport {
	var out StatusReport
	for i, r := range reps {
		if i == 0 {
			out.Version = r.Version
		} else if r.Version != out.Version {
			out.Version = ""
		}
		out.Proxies = append(out.Proxies, r.Proxies...)
	}
	slices.SortStableFunc(out.Proxies, func(a, b ProxyStatus) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Control, b.Control))
	})
	if out.Proxies == nil {
		out.Proxies = []ProxyStatus{}
	}
	return out
}
