package translate

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/api/v1alpha1"
	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/status"
)

// appProtocolH2C is the Kubernetes standard application protocol for
// HTTP/2 over cleartext with prior knowledge (KEP-3726).
const appProtocolH2C = "kubernetes.io/h2c"

// translateBackends validates every causeway.dev Backend and prepares its
// cluster; the status tells what is wrong with an invalid one.
func (t *translator) translateBackends() {
	for _, b := range t.s.Backends {
		info := &backendInfo{obj: b}
		t.backends[nsName{b.Namespace, b.Name}] = info
		e := t.entry("Backend", b.Namespace, b.Name)
		c, problem := backendCluster(b)
		if problem != nil {
			info.problem = problem
			e.Conditions = append(e.Conditions, *problem)
			continue
		}
		info.cluster = c
		e.Conditions = append(e.Conditions, cond(status.Accepted, true, status.ReasonAccepted, "",
			"%d endpoint(s)", len(c.Endpoints)))
	}
}

// backendCluster builds the cluster of a Backend, or the condition saying
// which field is invalid.
func backendCluster(b *v1alpha1.Backend) (*ir.Cluster, *status.Condition) {
	bad := func(field, format string, args ...any) (*ir.Cluster, *status.Condition) {
		c := cond(status.Accepted, false, status.ReasonUnsupportedValue, field, format, args...)
		return nil, &c
	}
	c := &ir.Cluster{
		Name:     "backend/" + b.Namespace + "/" + b.Name,
		Protocol: ir.UpstreamHTTP1,
		Origin:   "Backend/" + b.Namespace + "/" + b.Name,
	}
	if p := b.Spec.AppProtocol; p != nil {
		switch *p {
		case "", "http":
		case appProtocolH2C:
			c.Protocol = ir.UpstreamH2C
		default:
			return bad("spec.appProtocol", "appProtocol %q is not supported; use http or %s", *p, appProtocolH2C)
		}
	}
	if len(b.Spec.Endpoints) == 0 {
		return bad("spec.endpoints", "at least one endpoint is required")
	}
	for i, ep := range b.Spec.Endpoints {
		field := fmt.Sprintf("spec.endpoints[%d]", i)
		n := 0
		for _, set := range []bool{ep.IP != nil, ep.FQDN != nil, ep.Unix != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return bad(field, "exactly one of ip, fqdn or unix must be set, found %d", n)
		}
		switch {
		case ep.IP != nil:
			ip, err := netip.ParseAddr(ep.IP.Address)
			if err != nil || ip.Zone() != "" {
				return bad(field+".ip.address", "%q is not an IP address", ep.IP.Address)
			}
			if ep.IP.Port < 1 || ep.IP.Port > 65535 {
				return bad(field+".ip.port", "port %d is out of range 1-65535", ep.IP.Port)
			}
			c.Endpoints = append(c.Endpoints, ir.Endpoint{Address: net.JoinHostPort(ip.Unmap().String(), strconv.Itoa(int(ep.IP.Port))),
				Zone: ep.Zone, Region: ep.Region})
		case ep.FQDN != nil:
			if err := validHostname(ep.FQDN.Hostname, false); err != nil {
				return bad(field+".fqdn.hostname", "%v", err)
			}
			if ep.FQDN.Port < 1 || ep.FQDN.Port > 65535 {
				return bad(field+".fqdn.port", "port %d is out of range 1-65535", ep.FQDN.Port)
			}
			c.Endpoints = append(c.Endpoints, ir.Endpoint{Hostname: ep.FQDN.Hostname, Port: int(ep.FQDN.Port),
				Zone: ep.Zone, Region: ep.Region})
		default:
			if ep.Unix.Path == "" {
				return bad(field+".unix.path", "the socket path is empty")
			}
			c.Endpoints = append(c.Endpoints, ir.Endpoint{Unix: ep.Unix.Path, Zone: ep.Zone, Region: ep.Region})
		}
	}
	sortEndpoints(c)
	return c, nil
}

// sortEndpoints puts endpoints in canonical order and drops duplicates.
func sortEndpoints(c *ir.Cluster) {
	sort.Slice(c.Endpoints, func(i, j int) bool {
		a, b := c.Endpoints[i], c.Endpoints[j]
		if a.Address != b.Address {
			return a.Address < b.Address
		}
		if a.Hostname != b.Hostname {
			return a.Hostname < b.Hostname
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return a.Unix < b.Unix
	})
	out := c.Endpoints[:0]
	for i, e := range c.Endpoints {
		if i == 0 || e != c.Endpoints[i-1] {
			out = append(out, e)
		}
	}
	c.Endpoints = out
}

// backendRef is a resolved reference: a cluster name, or a problem.
type backendRef struct {
	cluster string // "" when the reference is invalid
	name    string // for logs: "Service/default/app:8080"
	problem *status.Condition
}

// resolveBackend resolves a backendRef (or a mirror's) of a route of kind
// (HTTPRoute, GRPCRoute) in namespace routeNS. field locates the reference
// for the condition. A GRPCRoute's clusters speak h2c (grpcCluster).
func (t *translator) resolveBackend(kind, routeNS string, ref gwv1.BackendObjectReference, field string) backendRef {
	out := t.resolveRef(kind, routeNS, ref, field)
	if kind == "GRPCRoute" && out.cluster != "" {
		out.cluster = t.grpcCluster(out.cluster)
	}
	return out
}

func (t *translator) resolveRef(routeKind, routeNS string, ref gwv1.BackendObjectReference, field string) backendRef {
	group, kind, ns := "", "Service", routeNS
	if ref.Group != nil {
		group = string(*ref.Group)
	}
	if ref.Kind != nil {
		kind = string(*ref.Kind)
	}
	if ref.Namespace != nil && *ref.Namespace != "" {
		ns = string(*ref.Namespace)
	}
	key := nsName{ns, string(ref.Name)}
	out := backendRef{name: kind + "/" + key.String()}
	if ref.Port != nil {
		out.name += ":" + strconv.Itoa(int(*ref.Port))
	}
	fail := func(reason, format string, args ...any) backendRef {
		c := cond(status.ResolvedRefs, false, reason, field, format, args...)
		out.problem = &c
		return out
	}
	switch {
	case group == "" && kind == "Service":
	case group == v1alpha1.Group && kind == "Backend":
	default:
		return fail(status.ReasonInvalidKind, "backend kind %q of group %q is not supported; use a core Service or a %s Backend", kind, group, v1alpha1.Group)
	}
	if !t.permitted(refFrom{gatewayGroup, routeKind, routeNS}, refTo{group, kind, ns, key.name}) {
		return fail(status.ReasonRefNotPermitted, "%s %s is in another namespace and no ReferenceGrant there allows %ss of namespace %s to use it", kind, key, routeKind, routeNS)
	}
	if kind == "Backend" {
		b := t.backends[key]
		switch {
		case b == nil:
			return fail(status.ReasonBackendNotFound, "Backend %s not found", key)
		case b.problem != nil:
			return fail(status.ReasonInvalid, "Backend %s is invalid: %s: %s", key, b.problem.Field, b.problem.Message)
		}
		t.clusters[b.cluster.Name] = b.cluster
		out.cluster = b.cluster.Name
		return out
	}
	svc := t.services[key]
	if svc == nil {
		return fail(status.ReasonBackendNotFound, "Service %s not found", key)
	}
	if ref.Port == nil {
		return fail(status.ReasonUnsupportedValue, "port is required for a Service backend")
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == *ref.Port {
			sp = &svc.Spec.Ports[i]
			break
		}
	}
	if sp == nil {
		return fail(status.ReasonBackendNotFound, "Service %s has no port %d", key, *ref.Port)
	}
	name := fmt.Sprintf("service/%s/%s/%d", ns, key.name, sp.Port)
	if t.clusters[name] == nil {
		t.clusters[name] = t.serviceCluster(name, svc, sp)
	}
	out.cluster = name
	return out
}

// serviceCluster builds the cluster of one Service port from the Service's
// EndpointSlices, resolving the target port as kube-proxy does: the slice
// port whose name equals the ServicePort's name. A Service without slices
// yields a cluster without endpoints (answered 503), not an error.
func (t *translator) serviceCluster(name string, svc *corev1.Service, sp *corev1.ServicePort) *ir.Cluster {
	c := &ir.Cluster{
		Name:      name,
		Protocol:  ir.UpstreamHTTP1,
		Origin:    fmt.Sprintf("Service/%s/%s:%d", svc.Namespace, svc.Name, sp.Port),
		Endpoints: []ir.Endpoint{},
	}
	if sp.AppProtocol != nil && *sp.AppProtocol == appProtocolH2C {
		c.Protocol = ir.UpstreamH2C
	}
	c.TLS = t.backendTLS(svc, sp)
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		if validHostname(svc.Spec.ExternalName, false) == nil {
			c.Endpoints = append(c.Endpoints, ir.Endpoint{Hostname: svc.Spec.ExternalName, Port: int(sp.Port)})
		}
		return c
	}
	for _, es := range t.slices[nsName{svc.Namespace, svc.Name}] {
		if es.AddressType != discoveryv1.AddressTypeIPv4 && es.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		port := -1
		for _, p := range es.Ports {
			pn := ""
			if p.Name != nil {
				pn = *p.Name
			}
			if pn == sp.Name && p.Port != nil && sliceProtocol(p.Protocol) == servicePortProtocol(sp) {
				port = int(*p.Port)
				break
			}
		}
		if port < 1 || port > 65535 {
			continue
		}
		for _, ep := range es.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if ep.Conditions.Terminating != nil && *ep.Conditions.Terminating {
				continue
			}
			for _, a := range ep.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil || ip.Zone() != "" {
					continue
				}
				c.Endpoints = append(c.Endpoints, ir.Endpoint{
					Address: net.JoinHostPort(ip.Unmap().String(), strconv.Itoa(port)),
					Zone:    deref(ep.Zone),
				})
			}
		}
	}
	sortEndpoints(c)
	return c
}

// sliceProtocol and servicePortProtocol default to TCP as Kubernetes does,
// so that a UDP Service port takes its endpoints from UDP slice ports.
func sliceProtocol(p *corev1.Protocol) corev1.Protocol {
	if p == nil || *p == "" {
		return corev1.ProtocolTCP
	}
	return *p
}

func servicePortProtocol(sp *corev1.ServicePort) corev1.Protocol {
	return sliceProtocol(&sp.Protocol)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
