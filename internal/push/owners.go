package push

import (
	"causeway.dev/causeway/internal/ir"
	"slices"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	pb "causeway.dev/causeway/api/push/v1alpha1"
	"causeway.dev/causeway/internal/resource"
)

// Owners attributes key material to Gateways: it maps the origin of a
// listener certificate ("Secret/NAMESPACE/NAME", as ir.Certificate.Origin
// spells it) to the Gateways ("namespace/name") whose listeners reference
// that Secret and may use it. The IR merges every Gateway listener on one
// socket into one listener, with every Gateway's certificates; Owners is
// how a proxy serving some of those Gateways receives only their keys.
// A certificate with no owner is sent to nobody but the proxies serving
// every Gateway of its socket.
type Owners map[string][]string

// SecretOwners reads Owners from the Gateways of snap: each listener's
// tls.certificateRefs to core Secrets, in the Gateway's namespace or in
// another that a ReferenceGrant opens to Gateways of the Gateway's
// namespace (the translator's rule: a certificate it refused to load for
// a Gateway is not that Gateway's).
func SecretOwners(snap *resource.Snapshot) Owners {
	o := Owners{}
	for _, g := range snap.Gateways {
		gw := g.Namespace + "/" + g.Name
		for _, l := range g.Spec.Listeners {
			if l.TLS == nil {
				continue
			}
			for _, ref := range l.TLS.CertificateRefs {
				if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Secret") {
					continue
				}
				ns := g.Namespace
				if ref.Namespace != nil && *ref.Namespace != "" {
					ns = string(*ref.Namespace)
				}
				if ns != g.Namespace && !secretGranted(snap.ReferenceGrants, g.Namespace, ns, string(ref.Name)) {
					continue
				}
				k := "Secret/" + ns + "/" + string(ref.Name)
				if !slices.Contains(o[k], gw) {
					o[k] = append(o[k], gw)
				}
			}
		}
	}
	return o
}

// secretGranted reports whether a ReferenceGrant in namespace to lets
// Gateways of namespace from use the Secret name.
func secretGranted(grants []*gwv1.ReferenceGrant, from, to, name string) bool {
	for _, rg := range grants {
		if rg.Namespace != to {
			continue
		}
		fromOK := slices.ContainsFunc(rg.Spec.From, func(f gwv1.ReferenceGrantFrom) bool {
			return f.Group == gwv1.GroupName && f.Kind == "Gateway" && string(f.Namespace) == from
		})
		toOK := slices.ContainsFunc(rg.Spec.To, func(t gwv1.ReferenceGrantTo) bool {
			return t.Group == "" && t.Kind == "Secret" && (t.Name == nil || string(*t.Name) == name)
		})
		if fromOK && toOK {
			return true
		}
	}
	return false
}

// forGroup is the listener as the proxies serving gateways receive it,
// with the clusters it references: whole when they serve every Gateway of
// the socket, else re-encoded with only their Gateways' routes (routes
// carry their Gateways on a shared socket) and the certificates
// one of their Gateways owns. nil when that encoding fails, leaving the
// listener out. Called with Server.mu held (it fills the variants cache).
func (l *listenerRes) forGroup(gateways []string) (*pb.Resource, []string) {
	if l.ir == nil || subset(l.gateways, gateways) {
		return l.res, l.clusters
	}
	k := groupKey(gateways)
	if v, ok := l.variants[k]; ok {
		return v.res, v.clusters
	}
	lc := *l.ir
	if l.ir.TLS != nil {
		t := *l.ir.TLS
		t.Certificates = nil
		for i, c := range l.ir.TLS.Certificates {
			if c != nil && i < len(l.owners) && intersects(l.owners[i], gateways) {
				t.Certificates = append(t.Certificates, c)
			}
		}
		lc.TLS = &t
	}
	lc.VirtualHosts = nil
	for _, vh := range l.ir.VirtualHosts {
		if vh == nil {
			continue
		}
		cp := *vh
		cp.Routes = []*ir.Route{}
		for _, r := range vh.Routes {
			if r != nil && intersects(r.Gateways, gateways) {
				cp.Routes = append(cp.Routes, r)
			}
		}
		// A host without routes stays for its own Gateway (it answers 404).
		if len(cp.Routes) > 0 || (len(vh.Routes) == 0 && slices.Contains(gateways, vh.Gateway)) {
			lc.VirtualHosts = append(lc.VirtualHosts, &cp)
		}
	}
	lc.L4Routes = nil
	for _, r := range l.ir.L4Routes {
		if r != nil && intersects(r.Gateways, gateways) {
			lc.L4Routes = append(lc.L4Routes, r)
		}
	}
	r, err := EncodeListener(&lc)
	if err != nil {
		r = nil
	}
	if l.variants == nil {
		l.variants = map[string]variant{}
	}
	v := variant{res: r, clusters: referenced(&lc)}
	l.variants[k] = v
	return v.res, v.clusters
}

// subset reports whether every element of a is in b.
func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
