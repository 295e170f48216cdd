package translate

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/status"
)

// This file holds TCPRoute and what the three L4 route kinds (TCPRoute,
// TLSRoute in tlsroute.go, UDPRoute in udproute.go) share: L4 listeners,
// attachment to them, and their ir.L4Routes. An L4 listener takes exactly
// one route kind (TLSRoute on TLS, TCPRoute on TCP, UDPRoute on UDP), never
// HTTPRoute; HTTP listeners take none of them.

// l4Listener is what a TLS, TCP or UDP listener adds to a listener.
type l4Listener struct {
	kind    string // the listener's own route kind; "" for HTTP listeners
	allowed bool   // allowedRoutes.kinds admits some route kind
	// kinds admitted: kind, and on a TLS listener in mode Terminate also
	// TCPRoute (the plaintext of any SNI the listener serves).
	kinds []string
	// terminate: TLS mode Terminate. TLS listeners of both modes may share
	// a socket (TLSRouteModeMixed): each placed route carries its
	// listener's mode, and the proxy chooses by the ClientHello's SNI.
	terminate bool
}

// l4Placed is one ir.L4Route placed on a socket, with what orders it.
type l4Placed struct {
	route   *ir.L4Route
	created metav1.Time
	key     nsName
	rule    int
	lhost   string // hostname of the listener that placed it
	gw      string // "namespace/name" of the Gateway that placed it
}

// l4Route is a TCPRoute, TLSRoute or UDPRoute being translated.
type l4Route struct {
	kind        string
	key         nsName
	created     metav1.Time
	parents     []gwv1.ParentReference
	hosts       []string // TLSRoute only
	hostProblem *fieldErr
	rules       [][]gwv1.BackendRef
	res         *status.Resource

	routes      []*ir.L4Route // one per rule, hostnames unset
	refProblems []status.Condition
}

// l4Kind is the route kind a listener protocol takes.
func l4Kind(p ir.Protocol) string {
	switch p {
	case ir.ProtocolTLS:
		return "TLSRoute"
	case ir.ProtocolTCP:
		return "TCPRoute"
	case ir.ProtocolUDP:
		return "UDPRoute"
	}
	return ""
}

// checkL4Listener sets the protocol and TLS mode of a TLS, TCP or UDP
// listener. A TLS listener in mode Terminate loads its certificates as an
// HTTPS one does (checkListener).
func checkL4Listener(l *listener, spec *gwv1.Listener, reject func(reason, field, format string, args ...any)) {
	switch spec.Protocol {
	case gwv1.TLSProtocolType:
		l.protocol = ir.ProtocolTLS
		if spec.TLS == nil {
			reject(status.ReasonInvalid, ".tls", "a TLS listener needs tls: mode Passthrough, or mode Terminate with certificateRefs")
			break
		}
		mode := gwv1.TLSModeTerminate // the API default
		if spec.TLS.Mode != nil {
			mode = *spec.TLS.Mode
		}
		switch mode {
		case gwv1.TLSModeTerminate:
			l.l4.terminate = true
		case gwv1.TLSModePassthrough:
		default:
			reject(status.ReasonUnsupportedValue, ".tls.mode", "tls.mode %q is not supported; use Terminate or Passthrough", mode)
		}
	case gwv1.TCPProtocolType:
		l.protocol = ir.ProtocolTCP
	case gwv1.UDPProtocolType:
		l.protocol = ir.ProtocolUDP
	}
	if l.protocol != ir.ProtocolTLS && spec.TLS != nil {
		reject(status.ReasonUnsupportedValue, ".tls", "tls must not be set for protocol %s", spec.Protocol)
	}
	l.l4.kind = l4Kind(l.protocol)
}

// checkL4Kinds is allowedRoutes.kinds of an L4 listener: its own kind,
// and TCPRoute too on a TLS listener that terminates.
func checkL4Kinds(l *listener, ar *gwv1.AllowedRoutes) {
	supported := []string{l.l4.kind}
	if l.protocol == ir.ProtocolTLS && l.l4.terminate {
		supported = append(supported, "TCPRoute")
	}
	var admitted, bad []string
	if ar == nil || len(ar.Kinds) == 0 {
		admitted = supported
	} else {
		for _, k := range ar.Kinds {
			group := gatewayGroup
			if k.Group != nil {
				group = string(*k.Group)
			}
			if group == gatewayGroup && slices.Contains(supported, string(k.Kind)) {
				if !slices.Contains(admitted, string(k.Kind)) {
					admitted = append(admitted, string(k.Kind))
				}
				continue
			}
			bad = append(bad, group+"/"+string(k.Kind))
		}
	}
	l.l4.kinds, l.l4.allowed = admitted, len(admitted) > 0
	l.st.SupportedKinds = append([]string{}, admitted...)
	if len(bad) > 0 {
		c := cond(status.ResolvedRefs, false, status.ReasonInvalidRouteKinds, l.field()+".allowedRoutes.kinds",
			"route kinds %s are not supported on a %s listener; supported: %s", strings.Join(bad, ", "), l.protocol, strings.Join(supported, ", "))
		l.refsCond = &c
	}
}

// allowsL4 reports whether a route of kind in namespace ns may attach to l.
func (t *translator) allowsL4(l *listener, ns, kind string) bool {
	if !slices.Contains(l.l4.kinds, kind) {
		return false
	}
	switch l.from {
	case gwv1.NamespacesFromAll:
		return true
	case gwv1.NamespacesFromSelector:
		return l.selector != nil && l.selector.Matches(labels.Set(t.namespaceLabels(ns)))
	}
	return ns == l.home()
}

// translateL4Routes translates every TCPRoute, TLSRoute and UDPRoute, in
// Gateway API precedence order (oldest first).
func (t *translator) translateL4Routes() {
	var all []*l4Route
	for _, r := range t.s.TCPRoutes {
		all = append(all, t.newTCPRoute(r))
	}
	for _, r := range t.s.TLSRoutes {
		all = append(all, t.newTLSRoute(r))
	}
	for _, r := range t.s.UDPRoutes {
		all = append(all, t.newUDPRoute(r))
	}
	sort.SliceStable(all, func(i, j int) bool { return precedes(all[i].created, all[j].created, all[i].key, all[j].key) })
	for _, r := range all {
		t.translateL4Route(r)
	}
}

func (t *translator) newTCPRoute(r *gwv1.TCPRoute) *l4Route {
	lr := &l4Route{kind: "TCPRoute", key: nsName{r.Namespace, r.Name}, created: r.CreationTimestamp, parents: r.Spec.ParentRefs}
	for _, rule := range r.Spec.Rules {
		lr.rules = append(lr.rules, rule.BackendRefs)
	}
	return lr
}

// translateL4Route compiles the route's rules and attaches it to its
// parents.
func (t *translator) translateL4Route(r *l4Route) {
	r.res = t.entry(r.kind, r.key.ns, r.key.name)
	prefix := strings.ToLower(r.kind) + "/" + r.key.String()
	for ri, refs := range r.rules {
		field := fmt.Sprintf("spec.rules[%d]", ri)
		lr := &ir.L4Route{
			Name:     fmt.Sprintf("%s/rule/%d", prefix, ri),
			Origin:   fmt.Sprintf("%s/%s %s", r.kind, r.key, field),
			Backends: []*ir.Backend{},
		}
		for bi := range refs {
			br := &refs[bi]
			bfield := fmt.Sprintf("%s.backendRefs[%d]", field, bi)
			weight := int32(1)
			if br.Weight != nil {
				weight = *br.Weight
			}
			if weight < 0 || weight > 1000000 {
				c := cond(status.ResolvedRefs, false, status.ReasonUnsupportedValue, bfield+".weight", "weight %d is out of range 0-1000000", weight)
				r.refProblems = append(r.refProblems, c)
				continue
			}
			ref := t.resolveBackend(r.kind, r.key.ns, br.BackendObjectReference, bfield)
			if ref.problem != nil {
				r.refProblems = append(r.refProblems, *ref.problem)
			}
			if weight == 0 {
				continue
			}
			// An invalid reference keeps its share, which is refused.
			lr.Backends = append(lr.Backends, &ir.Backend{Cluster: ref.cluster, Weight: weight, Name: ref.name})
		}
		r.routes = append(r.routes, lr)
	}
	if len(r.parents) == 0 {
		r.res.Conditions = append(r.res.Conditions, cond(status.Accepted, false, status.ReasonNoMatchingParent, "spec.parentRefs",
			"the route has no parentRefs, so it is attached to no Gateway"))
		return
	}
	attached := map[*listener]bool{}
	for i := range r.parents {
		r.res.Parents = append(r.res.Parents, withRefs(t.attachL4(r, i, attached), r.refsCond))
	}
}

// attachL4 evaluates one parentRef of an L4 route, as attach does for
// HTTPRoutes, and places the route's rules on the sockets of the listeners
// that take it.
func (t *translator) attachL4(r *l4Route, idx int, attached map[*listener]bool) status.Parent {
	pr := r.parents[idx]
	pt, found := t.resolveParent(pr, r.key.ns, idx, r.hostProblem)
	if !found {
		return pt.p
	}
	p, field, candidates := pt.p, pt.field, pt.candidates
	reject := func(reason, format string, args ...any) status.Parent {
		p.Conditions = append(p.Conditions, cond(status.Accepted, false, reason, field, format, args...))
		return p
	}
	allowed, ok := 0, 0
	for _, l := range candidates {
		if !l.accepted || !t.allowsL4(l, r.key.ns, r.kind) {
			continue
		}
		allowed++
		var hosts []string
		if r.kind == "TLSRoute" {
			ds := domains(r.hosts, l.hostname)
			if len(ds) == 0 {
				continue
			}
			if ds[0] != "*" {
				hosts = ds
			}
		}
		ok++
		if !attached[l] {
			attached[l] = true
			l.st.AttachedRoutes++
		}
		if !l.programmed {
			continue
		}
		for _, s := range l.sockets {
			for ri, lr := range r.routes {
				placed := *lr
				placed.Hostnames = hosts
				placed.Terminate = l.l4.terminate
				s.l4 = append(s.l4, &l4Placed{route: &placed, created: r.created, key: r.key, rule: ri, lhost: l.hostname, gw: l.gw.key.String()})
			}
		}
	}
	switch {
	case allowed == 0:
		return reject(status.ReasonNotAllowedByListeners, "no listener of %s%s allows %ss from namespace %s (see allowedRoutes, the listener protocol and conditions)",
			pt.parent, selectorText(pr), r.kind, r.key.ns)
	case ok == 0:
		return reject(status.ReasonNoMatchingListenerHostname, "the route's hostnames %s match no listener hostname of %s%s",
			strings.Join(r.hosts, ", "), pt.parent, selectorText(pr))
	}
	p.Conditions = append(p.Conditions, cond(status.Accepted, true, status.ReasonAccepted, "", "the route is attached"), r.refsCond())
	return p
}

// refsCond is the ResolvedRefs condition: the first problem's reason, and
// every problem in the message.
func (r *l4Route) refsCond() status.Condition {
	if len(r.refProblems) == 0 {
		return cond(status.ResolvedRefs, true, status.ReasonResolvedRefs, "", "all references are resolved")
	}
	parts := make([]string, len(r.refProblems))
	for i, c := range r.refProblems {
		parts[i] = c.Field + ": " + c.Message
	}
	first := r.refProblems[0]
	return cond(status.ResolvedRefs, false, first.Reason, first.Field, "%s", strings.Join(parts, "; "))
}

// buildL4 fills the L4 listeners of cfg (built by build, which knows only
// HTTP): their routes in precedence order, the certificates of the TLS
// listeners in mode Terminate when a route terminates (a socket without
// such a route has none, which tells the proxy to pass everything
// through), and the clusters their routes use.
func (t *translator) buildL4(cfg *ir.Config) {
	have := map[string]bool{}
	for _, c := range cfg.Clusters {
		have[c.Name] = true
	}
	for _, l := range cfg.Listeners {
		s := t.sockets[l.Name]
		if s == nil || l4Kind(l.Protocol) == "" {
			continue
		}
		sort.SliceStable(s.l4, func(i, j int) bool {
			a, b := s.l4[i], s.l4[j]
			if a.key != b.key {
				return precedes(a.created, b.created, a.key, b.key)
			}
			if a.rule != b.rule {
				return a.rule < b.rule
			}
			// One rule placed by several listeners: the most specific
			// listener first, so that it keeps a hostname placed twice
			// (it decides the TLS mode of that name).
			da, db := listenerDomain(a.lhost), listenerDomain(b.lhost)
			return da != db && domainLess(da, db)
		})
		l.L4Routes = []*ir.L4Route{}
		seen := map[string]*ir.L4Route{}
		shared := len(l.Gateways) > 1 // routes then say whose they are
		for _, p := range s.l4 {
			k := p.route.Name + "|" + strings.Join(p.route.Hostnames, ",")
			if r := seen[k]; r != nil { // attached twice to this socket
				if shared {
					r.Gateways = addGateway(r.Gateways, p.gw)
				}
				continue
			}
			seen[k] = p.route
			if shared {
				p.route.Gateways = []string{p.gw}
			}
			l.L4Routes = append(l.L4Routes, p.route)
			if p.route.Terminate && l.TLS == nil {
				l.TLS = &ir.TLS{Certificates: certificates(s)}
			}
			for _, b := range p.route.Backends {
				if c := t.clusters[b.Cluster]; c != nil && !have[b.Cluster] {
					have[b.Cluster] = true
					cfg.Clusters = append(cfg.Clusters, c)
				}
			}
		}
	}
	sort.Slice(cfg.Clusters, func(i, j int) bool { return cfg.Clusters[i].Name < cfg.Clusters[j].Name })
}
