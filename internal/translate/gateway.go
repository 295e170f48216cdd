package translate

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/status"
)

// classInfo is what Gateways need to know of their GatewayClass.
type classInfo struct {
	controller string
	ours       bool
	accepted   bool
}

// gateway is one of our Gateways being translated.
type gateway struct {
	obj       *gwv1.Gateway
	key       nsName
	res       *status.Resource
	ours      bool // class is ours (accepted or not)
	accepted  bool
	why       string // why not accepted, for routes
	listeners []*listener
	order     int // position in precedence order
}

// listener is one spec.listeners entry of one of our Gateways.
type listener struct {
	gw       *gateway
	set      *listenerSet // the ListenerSet defining it; nil for the Gateway's own (listenerset.go)
	idx      int
	name     string
	port     int
	protocol ir.Protocol
	hostname string // "" matches any
	st       *status.Listener

	accepted   bool       // may take routes: valid, not conflicted
	programmed bool       // accepted, refs resolved, serving
	httpRoutes bool       // allowedRoutes.kinds admits HTTPRoute
	grpcRoutes bool       // allowedRoutes.kinds admits GRPCRoute
	claims     []claim    // routes attached so far (grpcroute.go)
	certsBad   bool       // a certificateRef is not usable
	l4         l4Listener // TLS, TCP and UDP listeners (tcproute.go)
	from       gwv1.FromNamespaces
	selector   labels.Selector
	certs      []*ir.Certificate
	sockets    []*socket
	front      *frontend // HTTP and HTTPS: policy and client validation (clienttraffic.go)

	acceptedCond, refsCond, conflictCond *status.Condition
}

func (l *listener) field() string { return fmt.Sprintf("spec.listeners[%d]", l.idx) }

// socket is one ir.Listener being built.
type socket struct {
	l         *ir.Listener
	owner     string // Gateway that first claimed it
	listeners []*listener
	entries   []*entry
	l4        []*l4Placed // L4 routes (tcproute.go)
}

func (t *translator) translateClasses() {
	for _, gc := range t.s.GatewayClasses {
		e := t.entry("GatewayClass", "", gc.Name)
		ci := &classInfo{controller: string(gc.Spec.ControllerName)}
		t.classes[gc.Name] = ci
		if ci.controller != t.ctrl {
			e.Conditions = append(e.Conditions, cond(condIgnored, true, status.ReasonNotReconciled, "spec.controllerName",
				"GatewayClass %s names controller %q, not %s; it is left to that controller", gc.Name, ci.controller, t.ctrl))
			continue
		}
		ci.ours = true
		if gc.Spec.ParametersRef != nil {
			e.Conditions = append(e.Conditions, cond(status.Accepted, false, status.ReasonInvalidParameters, "spec.parametersRef",
				"parametersRef is not supported by %s; remove it", t.ctrl))
			continue
		}
		ci.accepted = true
		e.Conditions = append(e.Conditions, cond(status.Accepted, true, status.ReasonAccepted, "",
			"GatewayClass is managed by %s", t.ctrl))
	}
}

// precedes orders objects by creation timestamp, then "namespace/name":
// Gateway API's tie-break between routes, used for Gateways too so that
// the first claimant of a socket is stable.
func precedes(ta, tb metav1.Time, a, b nsName) bool {
	if !ta.Equal(&tb) {
		return ta.Before(&tb)
	}
	return a.String() < b.String()
}

func (t *translator) translateGateways() {
	gws := append([]*gwv1.Gateway(nil), t.s.Gateways...)
	sort.SliceStable(gws, func(i, j int) bool {
		return precedes(gws[i].CreationTimestamp, gws[j].CreationTimestamp,
			nsName{gws[i].Namespace, gws[i].Name}, nsName{gws[j].Namespace, gws[j].Name})
	})
	for _, obj := range gws {
		g := &gateway{obj: obj, key: nsName{obj.Namespace, obj.Name}, res: t.entry("Gateway", obj.Namespace, obj.Name), order: len(t.gwOrder)}
		t.gateways[g.key] = g
		t.gwOrder = append(t.gwOrder, g)
		t.translateGateway(g)
	}
}

func (t *translator) translateGateway(g *gateway) {
	class := string(g.obj.Spec.GatewayClassName)
	ci := t.classes[class]
	switch {
	case ci == nil:
		g.ours = true // a missing class is most likely a typo for ours
		g.why = fmt.Sprintf("GatewayClass %s not found", class)
		g.res.Conditions = append(g.res.Conditions, cond(status.Accepted, false, status.ReasonPending, "spec.gatewayClassName",
			"GatewayClass %s not found; define it with spec.controllerName: %s", class, t.ctrl))
		return
	case !ci.ours:
		g.why = fmt.Sprintf("its GatewayClass %s belongs to %s", class, ci.controller)
		g.res.Conditions = append(g.res.Conditions, cond(condIgnored, true, status.ReasonNotReconciled, "spec.gatewayClassName",
			"GatewayClass %s names controller %q, not %s; this Gateway is left to that controller", class, ci.controller, t.ctrl))
		return
	}
	g.ours = true
	if !ci.accepted {
		g.why = fmt.Sprintf("GatewayClass %s is not accepted", class)
		g.res.Conditions = append(g.res.Conditions, cond(status.Accepted, false, status.ReasonInvalidParameters, "spec.gatewayClassName",
			"GatewayClass %s is not accepted; see its status", class))
		return
	}
	if inf := g.obj.Spec.Infrastructure; inf != nil && inf.ParametersRef != nil {
		// Causeway has no parameters kind for Gateways: configuration is
		// in its policies. A reference is refused rather than ignored.
		ref := inf.ParametersRef
		g.why = "spec.infrastructure.parametersRef is not supported"
		g.res.Conditions = append(g.res.Conditions,
			cond(status.Accepted, false, status.ReasonInvalidParameters, "spec.infrastructure.parametersRef",
				"parametersRef %s %s is not supported by %s; Gateways are configured with ClientTrafficPolicy and BackendTrafficPolicy",
				strings.TrimPrefix(string(ref.Group)+"/"+string(ref.Kind), "/"), ref.Name, t.ctrl),
			cond(status.Programmed, false, status.ReasonInvalid, "", "the Gateway is not accepted"))
		return
	}
	addrs, bad := gatewayAddresses(g.obj)
	if bad == nil && len(g.obj.Spec.Addresses) == 0 && t.addrs != nil {
		if a := t.addrs(g.obj); len(a) > 0 {
			addrs = a
		}
	}
	if bad == nil {
		bad = checkGatewayTLS(g)
	}
	if bad != nil {
		g.why = bad.Message
		g.res.Conditions = append(g.res.Conditions, *bad,
			cond(status.Programmed, false, status.ReasonInvalid, "", "the Gateway is not accepted"))
		return
	}

	// Listener status entries first, so that pointers into the slice stay valid.
	g.res.Listeners = make([]status.Listener, len(g.obj.Spec.Listeners))
	for i := range g.obj.Spec.Listeners {
		spec := &g.obj.Spec.Listeners[i]
		l := &listener{gw: g, idx: i, name: string(spec.Name), port: int(spec.Port), hostname: "", st: &g.res.Listeners[i]}
		l.st.Name = l.name
		if spec.Hostname != nil {
			l.hostname = string(*spec.Hostname)
		}
		g.listeners = append(g.listeners, l)
		t.checkListener(l, spec)
	}
	markConflicts(g.listeners)
	for _, l := range g.listeners {
		if l.acceptedCond == nil && l.conflictCond == nil {
			l.accepted = true
		}
		// Unsupported extra route kinds do not stop a listener from
		// serving the kinds it supports; unusable certificates do.
		routes := l.httpRoutes || l.grpcRoutes || l.l4.allowed
		if l.accepted && !l.certsBad && routes {
			t.claimSockets(l, addrs)
		}
		l.programmed = l.accepted && !l.certsBad && routes && l.conflictCond == nil
		if !l.programmed {
			l.sockets = nil
		}
		l.writeStatus()
	}
	g.accepted = true
	t.gatewayConditions(g)
}

// gatewayAddresses returns the IPs to bind ("" for all interfaces), or the
// condition that rejects the Gateway.
func gatewayAddresses(gw *gwv1.Gateway) ([]string, *status.Condition) {
	if len(gw.Spec.Addresses) == 0 {
		return []string{""}, nil
	}
	seen := map[string]bool{}
	var out []string
	for i, a := range gw.Spec.Addresses {
		field := fmt.Sprintf("spec.addresses[%d]", i)
		if a.Type != nil && *a.Type != gwv1.IPAddressType {
			c := cond(status.Accepted, false, status.ReasonUnsupportedAddress, field,
				"address type %s is not supported; only IPAddress", *a.Type)
			return nil, &c
		}
		ip, err := netip.ParseAddr(a.Value)
		if err != nil || ip.Zone() != "" {
			c := cond(status.Accepted, false, status.ReasonUnsupportedAddress, field,
				"address %q is not an IP address", a.Value)
			return nil, &c
		}
		s := ip.Unmap().String()
		if ip.IsUnspecified() {
			s = ""
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out, nil
}

// checkListener validates one listener on its own: protocol, port,
// hostname, TLS, allowedRoutes.
func (t *translator) checkListener(l *listener, spec *gwv1.Listener) {
	reject := func(reason, field, format string, args ...any) {
		if l.acceptedCond == nil {
			c := cond(status.Accepted, false, reason, l.field()+field, format, args...)
			l.acceptedCond = &c
		}
	}
	for _, o := range l.siblings()[:l.idx] {
		if o.name == l.name {
			reject(status.ReasonInvalid, ".name", "listener name %q is used twice in this Gateway", l.name)
		}
	}
	switch spec.Protocol {
	case gwv1.HTTPProtocolType:
		l.protocol = ir.ProtocolHTTP
		if spec.TLS != nil {
			reject(status.ReasonUnsupportedValue, ".tls", "tls must not be set for protocol HTTP")
		}
	case gwv1.HTTPSProtocolType:
		l.protocol = ir.ProtocolHTTPS
	case gwv1.TLSProtocolType, gwv1.TCPProtocolType, gwv1.UDPProtocolType:
		checkL4Listener(l, spec, reject)
	default:
		reject(status.ReasonUnsupportedProtocol, ".protocol", "protocol %q is not supported; use HTTP, HTTPS, TLS, TCP or UDP", spec.Protocol)
	}
	if l.port < 1 || l.port > 65535 {
		reject(status.ReasonPortUnavailable, ".port", "port %d is out of range 1-65535", l.port)
	}
	if spec.Hostname != nil {
		if err := validHostname(l.hostname, true); err != nil {
			reject(status.ReasonUnsupportedValue, ".hostname", "%v", err)
		}
	}
	t.checkAllowedRoutes(l, spec, reject)
	if l.protocol == ir.ProtocolHTTPS || l.l4.terminate {
		t.loadCertificates(l, spec, reject)
	}
	t.frontListener(l, reject)
}

func (t *translator) checkAllowedRoutes(l *listener, spec *gwv1.Listener, reject func(reason, field, format string, args ...any)) {
	l.from = gwv1.NamespacesFromSame
	ar := spec.AllowedRoutes
	if ar != nil && ar.Namespaces != nil && ar.Namespaces.From != nil {
		l.from = *ar.Namespaces.From
	}
	switch l.from {
	case gwv1.NamespacesFromSame, gwv1.NamespacesFromAll:
	case gwv1.NamespacesFromSelector:
		if ar.Namespaces.Selector == nil {
			reject(status.ReasonInvalid, ".allowedRoutes.namespaces.selector", "from: Selector needs a selector")
			break
		}
		sel, err := metav1.LabelSelectorAsSelector(ar.Namespaces.Selector)
		if err != nil {
			reject(status.ReasonInvalid, ".allowedRoutes.namespaces.selector", "invalid label selector: %v", err)
			break
		}
		l.selector = sel
	default:
		reject(status.ReasonUnsupportedValue, ".allowedRoutes.namespaces.from", "from %q is not supported; use Same, All or Selector", l.from)
	}
	if l.protocol == "" {
		return // unsupported protocol: no route kind is served
	}
	if l.l4.kind != "" {
		checkL4Kinds(l, ar)
		return
	}
	if ar == nil || len(ar.Kinds) == 0 {
		l.httpRoutes, l.grpcRoutes = true, true
		l.st.SupportedKinds = []string{"HTTPRoute", "GRPCRoute"}
		return
	}
	var bad []string
	for _, k := range ar.Kinds {
		group := gatewayGroup
		if k.Group != nil {
			group = string(*k.Group)
		}
		if group == gatewayGroup && k.Kind == "HTTPRoute" {
			l.httpRoutes = true
			continue
		}
		if group == gatewayGroup && k.Kind == "GRPCRoute" {
			l.grpcRoutes = true
			continue
		}
		bad = append(bad, group+"/"+string(k.Kind))
	}
	if l.httpRoutes {
		l.st.SupportedKinds = append(l.st.SupportedKinds, "HTTPRoute")
	}
	if l.grpcRoutes {
		l.st.SupportedKinds = append(l.st.SupportedKinds, "GRPCRoute")
	}
	if len(bad) > 0 {
		c := cond(status.ResolvedRefs, false, status.ReasonInvalidRouteKinds, l.field()+".allowedRoutes.kinds",
			"route kinds %s are not supported; supported: HTTPRoute, GRPCRoute", strings.Join(bad, ", "))
		l.refsCond = &c
	}
}

// loadCertificates resolves certificateRefs into IR certificates.
func (t *translator) loadCertificates(l *listener, spec *gwv1.Listener, reject func(reason, field, format string, args ...any)) {
	if spec.TLS != nil && spec.TLS.Mode != nil && *spec.TLS.Mode != gwv1.TLSModeTerminate {
		reject(status.ReasonUnsupportedValue, ".tls.mode", "tls.mode %s is not valid for protocol HTTPS; use Terminate", *spec.TLS.Mode)
		return
	}
	fail := func(reason, field, format string, args ...any) {
		l.certsBad = true
		if l.refsCond == nil || l.refsCond.Reason == status.ReasonInvalidRouteKinds {
			c := cond(status.ResolvedRefs, false, reason, l.field()+field, format, args...)
			l.refsCond = &c
		}
	}
	if spec.TLS == nil || len(spec.TLS.CertificateRefs) == 0 {
		fail(status.ReasonInvalidCertificateRef, ".tls.certificateRefs", "an HTTPS listener needs tls.certificateRefs")
		return
	}
	home, fromKind := l.home(), l.refKind()
	var certs []*ir.Certificate
	for i, ref := range spec.TLS.CertificateRefs {
		field := fmt.Sprintf(".tls.certificateRefs[%d]", i)
		group, kind, ns := "", "Secret", home
		if ref.Group != nil {
			group = string(*ref.Group)
		}
		if ref.Kind != nil {
			kind = string(*ref.Kind)
		}
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		key := nsName{ns, string(ref.Name)}
		if group != "" || kind != "Secret" {
			fail(status.ReasonInvalidCertificateRef, field, "certificate reference to %s %s: only core Secrets are supported", strings.TrimPrefix(group+"/"+kind, "/"), key)
			continue
		}
		if !t.permitted(refFrom{gatewayGroup, fromKind, home}, refTo{"", "Secret", ns, key.name}) {
			fail(status.ReasonRefNotPermitted, field, "Secret %s is in another namespace and no ReferenceGrant there allows %ss of namespace %s to use it", key, fromKind, home)
			continue
		}
		sec := t.secrets[key]
		if sec == nil {
			fail(status.ReasonInvalidCertificateRef, field, "Secret %s not found", key)
			continue
		}
		crt, keyPEM, err := tlsSecret(sec)
		if err != nil {
			fail(status.ReasonInvalidCertificateRef, field, "Secret %s: %v", key, err)
			continue
		}
		c := &ir.Certificate{CertPEM: crt, KeyPEM: keyPEM, Origin: "Secret/" + key.String()}
		if l.hostname != "" {
			c.SNI = []string{l.hostname}
		}
		certs = append(certs, c)
	}
	l.certs = certs
}

// tlsSecret returns the PEM chain and key of a kubernetes.io/tls Secret,
// checked to form a pair. stringData counts, as kubectl apply would merge it.
func tlsSecret(sec *corev1.Secret) (crt, key []byte, err error) {
	if sec.Type != corev1.SecretTypeTLS {
		return nil, nil, fmt.Errorf("type is %q, want %s", sec.Type, corev1.SecretTypeTLS)
	}
	get := func(k string) []byte {
		if v, ok := sec.StringData[k]; ok {
			return []byte(v)
		}
		return sec.Data[k]
	}
	crt, key = get(corev1.TLSCertKey), get(corev1.TLSPrivateKeyKey)
	if len(crt) == 0 || len(key) == 0 {
		return nil, nil, fmt.Errorf("%s and %s are both required", corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	}
	if _, err := tls.X509KeyPair(crt, key); err != nil {
		return nil, nil, fmt.Errorf("invalid certificate or key: %w", err)
	}
	return crt, key, nil
}

// markConflicts applies Gateway API's distinctness rules within a Gateway:
// listeners on one port must share the protocol (else all of them are
// ProtocolConflict) and differ by hostname (else HostnameConflict). No
// listener is picked as a winner. TLS listeners of modes Terminate and
// Passthrough share a port (TLSRouteModeMixed).
func markConflicts(ls []*listener) {
	byPort := map[int][]*listener{}
	for _, l := range ls {
		if l.protocol != "" && l.port >= 1 && l.port <= 65535 {
			byPort[l.port] = append(byPort[l.port], l)
		}
	}
	for port, group := range byPort {
		protos := map[ir.Protocol]bool{}
		for _, l := range group {
			protos[l.protocol] = true
		}
		if len(protos) > 1 {
			for _, l := range group {
				c := cond(status.Conflicted, true, status.ReasonProtocolConflict, l.field()+".protocol",
					"listeners on port %d use different protocols; all of them are disabled", port)
				l.conflictCond = &c
			}
			continue
		}
		byHost := map[string][]*listener{}
		for _, l := range group {
			byHost[l.hostname] = append(byHost[l.hostname], l)
		}
		for host, same := range byHost {
			if len(same) < 2 {
				continue
			}
			names := make([]string, len(same))
			for i, l := range same {
				names[i] = l.name
			}
			for _, l := range same {
				c := cond(status.Conflicted, true, status.ReasonHostnameConflict, l.field()+".hostname",
					"listeners %s share port %d, protocol %s and hostname %q; all of them are disabled",
					strings.Join(names, ", "), port, l.protocol, host)
				l.conflictCond = &c
			}
		}
	}
}

// socketName is the ir.Listener name of addr:port.
func socketName(addr string, port int) string {
	if addr == "" {
		addr = "0.0.0.0"
	}
	return net.JoinHostPort(addr, fmt.Sprint(port))
}

// claimSockets puts a listener on its sockets, one per Gateway address.
// Gateways sharing an address and port share the socket when the protocols
// agree; otherwise the later Gateway's listener is conflicted. A socket on
// all interfaces and one on a single IP cannot both be bound on a port, so
// the later one is PortUnavailable.
func (t *translator) claimSockets(l *listener, addrs []string) {
	gwKey := l.gw.key.String()
	for _, a := range addrs {
		name := socketName(a, l.port)
		if s := t.sockets[name]; s != nil {
			if s.l.Protocol != l.protocol { // TLS modes may mix (TLSRouteModeMixed)
				c := cond(status.Conflicted, true, status.ReasonProtocolConflict, l.field()+".protocol",
					"%s is already served with protocol %s for Gateway %s", name, s.l.Protocol, s.owner)
				l.conflictCond = &c
				return
			}
			if c := frontendConflict(s, l, name); c != nil {
				l.conflictCond = c
				return
			}
			continue
		}
		for _, s := range t.sortedSockets() {
			if s.l.Port == l.port && (s.l.Address == "") != (a == "") {
				c := cond(status.Accepted, false, status.ReasonPortUnavailable, l.field()+".port",
					"port %d cannot be bound on %s: Gateway %s already binds it on %s", l.port, name, s.owner, s.l.Name)
				l.acceptedCond = &c
				l.accepted = false
				return
			}
		}
	}
	for _, a := range addrs {
		name := socketName(a, l.port)
		s := t.sockets[name]
		if s == nil {
			s = &socket{owner: gwKey, l: &ir.Listener{Name: name, Address: a, Port: l.port, Protocol: l.protocol}}
			t.sockets[name] = s
		}
		s.listeners = append(s.listeners, l)
		s.l.SNIHostnames = sniHostnames(s) // misdirected.go
		l.sockets = append(l.sockets, s)
	}
}

// writeStatus fills the listener's conditions (AttachedRoutes comes later).
func (l *listener) writeStatus() {
	var conds []status.Condition
	if l.acceptedCond != nil {
		conds = append(conds, *l.acceptedCond)
	} else {
		conds = append(conds, cond(status.Accepted, true, status.ReasonAccepted, "", "listener is valid"))
	}
	if l.refsCond != nil {
		conds = append(conds, *l.refsCond)
	} else {
		conds = append(conds, cond(status.ResolvedRefs, true, status.ReasonResolvedRefs, "", "all references are resolved"))
	}
	if l.conflictCond != nil {
		conds = append(conds, *l.conflictCond)
	} else {
		conds = append(conds, cond(status.Conflicted, false, status.ReasonNoConflicts, "", "no conflicts"))
	}
	if l.programmed {
		names := make([]string, len(l.sockets))
		for i, s := range l.sockets {
			names[i] = s.l.Name
		}
		conds = append(conds, cond(status.Programmed, true, status.ReasonProgrammed, "", "serving on %s", strings.Join(names, ", ")))
	} else {
		conds = append(conds, cond(status.Programmed, false, status.ReasonInvalid, "", "listener is not served: see its other conditions"))
	}
	l.st.Conditions = conds
	if l.st.SupportedKinds == nil {
		l.st.SupportedKinds = []string{}
	}
}

// gatewayConditions summarises the listeners into the Gateway's Accepted
// and Programmed conditions.
func (t *translator) gatewayConditions(g *gateway) {
	var bad, good []string
	for _, l := range g.listeners {
		if l.programmed {
			good = append(good, l.name)
		} else {
			bad = append(bad, l.name)
		}
	}
	// A listener that is valid but not served (its certificates cannot be
	// used) still takes routes, which then count in attachedRoutes.
	anyAccepted := false
	for _, l := range g.listeners {
		anyAccepted = anyAccepted || l.accepted
	}
	switch {
	case len(bad) == 0:
		g.res.Conditions = append(g.res.Conditions, cond(status.Accepted, true, status.ReasonAccepted, "", "Gateway is valid"))
	case len(good) == 0 && anyAccepted:
		g.res.Conditions = append(g.res.Conditions, cond(status.Accepted, true, status.ReasonListenersNotValid, "spec.listeners",
			"no listener is served (%s); see the listener conditions", strings.Join(bad, ", ")))
	case len(good) == 0:
		g.accepted = false
		g.why = "none of its listeners is valid"
		g.res.Conditions = append(g.res.Conditions, cond(status.Accepted, false, status.ReasonListenersNotValid, "spec.listeners",
			"no listener is valid (%s); see the listener conditions", strings.Join(bad, ", ")))
	default:
		g.res.Conditions = append(g.res.Conditions, cond(status.Accepted, true, status.ReasonListenersNotValid, "spec.listeners",
			"listeners %s are not valid and not served; listeners %s are", strings.Join(bad, ", "), strings.Join(good, ", ")))
	}
	if len(good) > 0 {
		g.res.Conditions = append(g.res.Conditions, cond(status.Programmed, true, status.ReasonProgrammed, "", "serving listeners %s", strings.Join(good, ", ")))
	} else {
		g.res.Conditions = append(g.res.Conditions, cond(status.Programmed, false, status.ReasonInvalid, "", "no listener is served"))
	}
}

// allows reports whether a route of kind in namespace ns may attach to l
// (kinds and namespaces of allowedRoutes).
func (t *translator) allows(l *listener, ns, kind string) bool {
	if kind == "GRPCRoute" && !l.grpcRoutes || kind != "GRPCRoute" && !l.httpRoutes {
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

// namespaceLabels returns a namespace's labels including the
// kubernetes.io/metadata.name label the API server always sets; a
// namespace without a Namespace object has only that one.
func (t *translator) namespaceLabels(ns string) map[string]string {
	out := map[string]string{corev1.LabelMetadataName: ns}
	for k, v := range t.namespaces[ns] {
		if k != corev1.LabelMetadataName {
			out[k] = v
		}
	}
	return out
}

// sortedSockets returns the sockets by name.
func (t *translator) sortedSockets() []*socket {
	out := make([]*socket, 0, len(t.sockets))
	for _, s := range t.sockets {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].l.Name < out[j].l.Name })
	return out
}
