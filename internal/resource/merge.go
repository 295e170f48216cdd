package resource

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"causeway.dev/causeway/internal/status"
)

// Merge combines partial snapshots (typically one per file) into one, in the
// order given. A resource defined in several parts is taken from the first;
// each later copy is dropped with a Problem naming both places. Problems of
// the parts are kept, in order. Nil parts are skipped. Objects are shared
// with the parts, not copied: snapshots are immutable.
func Merge(parts ...*Snapshot) *Snapshot {
	out := New()
	for _, p := range parts {
		if p == nil {
			continue
		}
		out.Problems = append(out.Problems, p.Problems...)
		out.GatewayClasses = mergeKind(out, p, out.GatewayClasses, p.GatewayClasses, "GatewayClass")
		out.Gateways = mergeKind(out, p, out.Gateways, p.Gateways, "Gateway")
		out.ListenerSets = mergeKind(out, p, out.ListenerSets, p.ListenerSets, "ListenerSet")
		out.HTTPRoutes = mergeKind(out, p, out.HTTPRoutes, p.HTTPRoutes, "HTTPRoute")
		out.GRPCRoutes = mergeKind(out, p, out.GRPCRoutes, p.GRPCRoutes, "GRPCRoute")
		out.TLSRoutes = mergeKind(out, p, out.TLSRoutes, p.TLSRoutes, "TLSRoute")
		out.TCPRoutes = mergeKind(out, p, out.TCPRoutes, p.TCPRoutes, "TCPRoute")
		out.UDPRoutes = mergeKind(out, p, out.UDPRoutes, p.UDPRoutes, "UDPRoute")
		out.ReferenceGrants = mergeKind(out, p, out.ReferenceGrants, p.ReferenceGrants, "ReferenceGrant")
		out.Namespaces = mergeKind(out, p, out.Namespaces, p.Namespaces, "Namespace")
		out.Services = mergeKind(out, p, out.Services, p.Services, "Service")
		out.EndpointSlices = mergeKind(out, p, out.EndpointSlices, p.EndpointSlices, "EndpointSlice")
		out.Secrets = mergeKind(out, p, out.Secrets, p.Secrets, "Secret")
		out.Backends = mergeKind(out, p, out.Backends, p.Backends, "Backend")
		out.BackendTrafficPolicies = mergeKind(out, p, out.BackendTrafficPolicies, p.BackendTrafficPolicies, "BackendTrafficPolicy")
		out.ConfigMaps = mergeKind(out, p, out.ConfigMaps, p.ConfigMaps, "ConfigMap")
		out.BackendTLSPolicies = mergeKind(out, p, out.BackendTLSPolicies, p.BackendTLSPolicies, "BackendTLSPolicy")
		out.ClientTrafficPolicies = mergeKind(out, p, out.ClientTrafficPolicies, p.ClientTrafficPolicies, "ClientTrafficPolicy")
	}
	return out
}

// mergeKind appends the objects of one kind of part p to dst, recording
// their sources in out and a Problem for each duplicate.
func mergeKind[T metav1.Object](out, p *Snapshot, dst, objs []T, kind string) []T {
	for _, o := range objs {
		ref := status.Ref{Kind: kind, Namespace: o.GetNamespace(), Name: o.GetName()}
		src := p.Sources[ref]
		if prev, dup := out.Sources[ref]; dup {
			out.Problems = append(out.Problems, Problem{
				Source:  src,
				Ref:     ref,
				Message: fmt.Sprintf("duplicate: %s is already defined at %s; this copy is ignored", ref, prev),
			})
			continue
		}
		out.Sources[ref] = src
		dst = append(dst, o)
	}
	return dst
}
