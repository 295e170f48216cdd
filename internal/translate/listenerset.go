package translate

import (
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/internal/status"
)

// ListenerSet reasons Gateway API defines beside the Gateway ones.
const (
	reasonNotAllowed          = string(gwv1.ListenerSetReasonNotAllowed)
	reasonParentNotAccepted   = string(gwv1.ListenerSetReasonParentNotAccepted)
	reasonParentNotProgrammed = "ParentNotProgrammed"
)

// listenerSet is one ListenerSet being translated. Its listeners become
// listeners of the parent Gateway (same sockets, same addresses), ranked
// after the Gateway's own and after older ListenerSets; routes reach them
// only through a parentRef naming the ListenerSet.
type listenerSet struct {
	obj       *gwv1.ListenerSet
	key       nsName
	res       *status.Resource
	gw        *gateway // parent; nil when it is not one of our accepted Gateways
	ignored   bool     // the parent Gateway belongs to another controller
	accepted  bool
	why       string // why not accepted, for routes
	listeners []*listener
}

// siblings are the listeners defined in the same resource as l, in order.
func (l *listener) siblings() []*listener {
	if l.set != nil {
		return l.set.listeners
	}
	return l.gw.listeners
}

// home is the namespace of the resource that defines l: allowedRoutes
// "Same" and certificateRefs without a namespace are relative to it.
func (l *listener) home() string {
	if l.set != nil {
		return l.set.key.ns
	}
	return l.gw.key.ns
}

// refKind is the kind ReferenceGrants must name for l's references:
// grants to a Gateway are not inherited by its ListenerSets.
func (l *listener) refKind() string {
	if l.set != nil {
		return "ListenerSet"
	}
	return "Gateway"
}

// translateListenerSets attaches every ListenerSet to its parent Gateway,
// Gateway by Gateway in precedence order, after all Gateways have placed
// their own listeners.
func (t *translator) translateListenerSets() {
	t.lsets = make(map[nsName]*listenerSet, len(t.s.ListenerSets))
	sets := append([]*gwv1.ListenerSet(nil), t.s.ListenerSets...)
	sort.SliceStable(sets, func(i, j int) bool {
		return precedes(sets[i].CreationTimestamp, sets[j].CreationTimestamp,
			nsName{sets[i].Namespace, sets[i].Name}, nsName{sets[j].Namespace, sets[j].Name})
	})
	byGateway := map[*gateway][]*listenerSet{}
	for _, obj := range sets {
		ls := &listenerSet{obj: obj, key: nsName{obj.Namespace, obj.Name}, res: t.entry("ListenerSet", obj.Namespace, obj.Name)}
		t.lsets[ls.key] = ls
		if g := t.listenerSetParent(ls); g != nil {
			byGateway[g] = append(byGateway[g], ls)
		}
	}
	for _, g := range t.gwOrder {
		if sets := byGateway[g]; len(sets) > 0 {
			t.mergeListenerSets(g, sets)
		}
	}
}

// listenerSetParent returns the Gateway ls may attach to, or nil after
// writing why it may not.
func (t *translator) listenerSetParent(ls *listenerSet) *gateway {
	ref := ls.obj.Spec.ParentRef
	group, kind, ns := gatewayGroup, "Gateway", ls.key.ns
	if ref.Group != nil {
		group = string(*ref.Group)
	}
	if ref.Kind != nil {
		kind = string(*ref.Kind)
	}
	if ref.Namespace != nil && *ref.Namespace != "" {
		ns = string(*ref.Namespace)
	}
	reject := func(reason, programmed, field, format string, args ...any) *gateway {
		c := cond(status.Accepted, false, reason, field, format, args...)
		ls.why = c.Message
		ls.res.Conditions = append(ls.res.Conditions, c,
			cond(status.Programmed, false, programmed, "", "the ListenerSet is not accepted"))
		return nil
	}
	if group != gatewayGroup || kind != "Gateway" {
		return reject(status.ReasonInvalid, status.ReasonInvalid, "spec.parentRef",
			"parent kind %q of group %q is not supported; only Gateway", kind, group)
	}
	g := t.gateways[nsName{ns, string(ref.Name)}]
	switch {
	case g == nil:
		return reject(reasonParentNotAccepted, reasonParentNotProgrammed, "spec.parentRef", "Gateway %s/%s not found", ns, ref.Name)
	case !g.ours:
		ls.ignored = true
		ls.why = g.why
		ls.res.Conditions = append(ls.res.Conditions, cond(condIgnored, true, status.ReasonNotReconciled, "spec.parentRef",
			"Gateway %s is not managed by %s: %s", g.key, t.ctrl, g.why))
		return nil
	case !g.accepted:
		return reject(reasonParentNotAccepted, reasonParentNotProgrammed, "spec.parentRef", "Gateway %s is not accepted: %s", g.key, g.why)
	}
	if ok, why := t.allowsListenerSet(g, ls.key.ns); !ok {
		return reject(reasonNotAllowed, reasonNotAllowed, "spec.parentRef",
			"Gateway %s does not allow ListenerSets from namespace %s: %s", g.key, ls.key.ns, why)
	}
	return g
}

// allowsListenerSet applies the Gateway's spec.allowedListeners (default:
// none) to a ListenerSet of namespace ns.
func (t *translator) allowsListenerSet(g *gateway, ns string) (bool, string) {
	from := gwv1.NamespacesFromNone
	var sel *metav1.LabelSelector
	if al := g.obj.Spec.AllowedListeners; al != nil && al.Namespaces != nil {
		if al.Namespaces.From != nil {
			from = *al.Namespaces.From
		}
		sel = al.Namespaces.Selector
	}
	switch from {
	case gwv1.NamespacesFromAll:
		return true, ""
	case gwv1.NamespacesFromSame:
		return ns == g.key.ns, "spec.allowedListeners.namespaces.from is Same"
	case gwv1.NamespacesFromSelector:
		if sel == nil {
			return false, "spec.allowedListeners.namespaces.from is Selector but no selector is set"
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return false, fmt.Sprintf("spec.allowedListeners.namespaces.selector is invalid: %v", err)
		}
		return s.Matches(labels.Set(t.namespaceLabels(ns))), "the namespace does not match spec.allowedListeners.namespaces.selector"
	case gwv1.NamespacesFromNone:
		return false, "spec.allowedListeners is unset or from: None"
	}
	return false, fmt.Sprintf("spec.allowedListeners.namespaces.from %q is not supported", from)
}

// gatewayAddrs returns the addresses an accepted Gateway binds, as
// translateGateway computed them.
func (t *translator) gatewayAddrs(g *gateway) []string {
	addrs, _ := gatewayAddresses(g.obj)
	if len(g.obj.Spec.Addresses) == 0 && t.addrs != nil {
		if a := t.addrs(g.obj); len(a) > 0 {
			addrs = a
		}
	}
	return addrs
}

// mergeListenerSets adds the listeners of sets (in precedence order) to g.
// A listener that clashes with one placed before it (the Gateway's own,
// older ListenerSets', earlier ones of its own set) on port but not
// protocol, or on port, protocol and hostname, is conflicted; the earlier
// one keeps serving.
func (t *translator) mergeListenerSets(g *gateway, sets []*listenerSet) {
	addrs := t.gatewayAddrs(g)
	var placed []*listener
	for _, l := range g.listeners {
		if l.acceptedCond == nil && l.conflictCond == nil {
			placed = append(placed, l)
		}
	}
	for _, ls := range sets {
		ls.gw = g
		specs := ls.obj.Spec.Listeners
		ls.res.Listeners = make([]status.Listener, len(specs))
		for i := range specs {
			spec := gwv1.Listener(specs[i])
			l := &listener{gw: g, set: ls, idx: i, name: string(spec.Name), port: int(spec.Port), st: &ls.res.Listeners[i]}
			l.st.Name = l.name
			if spec.Hostname != nil {
				l.hostname = string(*spec.Hostname)
			}
			ls.listeners = append(ls.listeners, l)
			t.checkListener(l, &spec)
		}
		// Unlike a Gateway's own listeners (all of a clashing group are
		// disabled), a ListenerSet's are ranked: the first one wins, within
		// the set as against the Gateway and older sets.
		for _, l := range ls.listeners {
			if l.acceptedCond == nil && l.conflictCond == nil {
				l.conflictCond = placedConflict(l, placed)
			}
			l.accepted = l.acceptedCond == nil && l.conflictCond == nil
			routes := l.httpRoutes || l.grpcRoutes || l.l4.allowed
			if l.accepted && !l.certsBad && routes {
				t.claimSockets(l, addrs)
			}
			l.programmed = l.accepted && !l.certsBad && routes && l.conflictCond == nil
			if !l.programmed {
				l.sockets = nil
			}
			if l.acceptedCond == nil && l.conflictCond == nil {
				placed = append(placed, l)
			}
			l.writeStatus()
			conflictedStatus(l)
		}
		listenerSetConditions(ls)
	}
}

// placedConflict returns the Conflicted condition of l against the
// listeners placed before it, or nil.
func placedConflict(l *listener, placed []*listener) *status.Condition {
	if l.protocol == "" || l.port < 1 || l.port > 65535 {
		return nil
	}
	for _, o := range placed {
		if o.port != l.port {
			continue
		}
		var c status.Condition
		switch {
		case o.protocol != l.protocol:
			c = cond(status.Conflicted, true, status.ReasonProtocolConflict, l.field()+".protocol",
				"port %d is already served with protocol %s by %s, which takes precedence", l.port, o.protocol, o.describe())
		case o.hostname == l.hostname:
			c = cond(status.Conflicted, true, status.ReasonHostnameConflict, l.field()+".hostname",
				"port %d, protocol %s and hostname %q are already served by %s, which takes precedence", l.port, l.protocol, l.hostname, o.describe())
		default:
			continue
		}
		return &c
	}
	return nil
}

// describe names a listener in messages.
func (l *listener) describe() string {
	if l.set != nil {
		return fmt.Sprintf("listener %s of ListenerSet %s", l.name, l.set.key)
	}
	return fmt.Sprintf("listener %s of Gateway %s", l.name, l.gw.key)
}

// conflictedStatus reports a conflicted ListenerSet listener as Gateway
// API asks of them: not accepted and not programmed, for the conflict's
// reason.
func conflictedStatus(l *listener) {
	if l.conflictCond == nil {
		return
	}
	reason := l.conflictCond.Reason
	if l.acceptedCond == nil {
		l.st.Conditions = status.Set(l.st.Conditions, cond(status.Accepted, false, reason, l.conflictCond.Field, "%s", l.conflictCond.Message))
	}
	l.st.Conditions = status.Set(l.st.Conditions, cond(status.Programmed, false, reason, "", "listener is not served: it is conflicted"))
}

// listenerSetConditions summarises the listeners into the ListenerSet's
// Accepted and Programmed conditions: accepted while one listener serves.
func listenerSetConditions(ls *listenerSet) {
	var good, bad []string
	for _, l := range ls.listeners {
		if l.programmed {
			good = append(good, l.name)
		} else {
			bad = append(bad, l.name)
		}
	}
	c := &ls.res.Conditions
	switch {
	case len(good) == 0:
		ls.why = "none of its listeners is valid"
		*c = append(*c, cond(status.Accepted, false, status.ReasonListenersNotValid, "spec.listeners",
			"no listener is valid (%s); see the listener conditions", strings.Join(bad, ", ")),
			cond(status.Programmed, false, status.ReasonListenersNotValid, "", "no listener is served"))
		return
	case len(bad) == 0:
		*c = append(*c, cond(status.Accepted, true, status.ReasonAccepted, "", "attached to Gateway %s", ls.gw.key))
	default:
		*c = append(*c, cond(status.Accepted, true, status.ReasonListenersNotValid, "spec.listeners",
			"listeners %s are not valid and not served; listeners %s are", strings.Join(bad, ", "), strings.Join(good, ", ")))
	}
	ls.accepted = true
	*c = append(*c, cond(status.Programmed, true, status.ReasonProgrammed, "", "serving listeners %s", strings.Join(good, ", ")))
}

// resolveListenerSet is resolveParent for a parentRef of kind ListenerSet:
// the candidates are the ListenerSet's listeners only.
func (t *translator) resolveListenerSet(pr gwv1.ParentReference, p status.Parent, field, ns string, hostProblem *fieldErr) (parentTarget, bool) {
	reject := func(reason, format string, args ...any) (parentTarget, bool) {
		p.Conditions = append(p.Conditions, cond(status.Accepted, false, reason, field, format, args...))
		return parentTarget{p: p}, false
	}
	ls := t.lsets[nsName{ns, string(pr.Name)}]
	switch {
	case ls == nil:
		return reject(status.ReasonNoMatchingParent, "ListenerSet %s/%s not found", ns, pr.Name)
	case ls.ignored:
		p.Conditions = append(p.Conditions, cond(condIgnored, true, status.ReasonNotReconciled, field,
			"ListenerSet %s is not managed by %s: %s", ls.key, t.ctrl, ls.why))
		return parentTarget{p: p}, false
	case !ls.accepted:
		return reject(status.ReasonNoMatchingParent, "ListenerSet %s is not accepted: %s", ls.key, ls.why)
	}
	var candidates []*listener
	for _, l := range ls.listeners {
		if (pr.SectionName == nil || string(*pr.SectionName) == l.name) && (pr.Port == nil || int(*pr.Port) == l.port) {
			candidates = append(candidates, l)
		}
	}
	if len(candidates) == 0 {
		return reject(status.ReasonNoMatchingParent, "ListenerSet %s has no listener%s", ls.key, selectorText(pr))
	}
	if hostProblem != nil {
		return reject(status.ReasonUnsupportedValue, "%s: %s", hostProblem.field, hostProblem.msg)
	}
	return parentTarget{p: p, field: field, g: ls.gw, parent: "ListenerSet " + ls.key.String(), candidates: candidates}, true
}
