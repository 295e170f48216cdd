package translate

import (
	"fmt"
	"net/textproto"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/api/v1alpha1"
	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/status"
)

// BackendTrafficPolicy resolution. Each policy is compiled once into flat
// settings: one per leaf field (or one-of group), each with the key of the
// setting it fills ("retry.attempts"), the field it came from and how to
// apply it. Resolving a route is then a merge of layers, least specific
// first, in which a later layer's setting replaces an earlier one of the
// same key; the winners are applied in key order and recorded in Sources.
// The precedence itself is documented on v1alpha1.BackendTrafficPolicy.

const (
	kindBTP = "BackendTrafficPolicy"
	// Gateway API policy reasons (GEP-713).
	reasonConflicted     = "Conflicted"
	reasonTargetNotFound = "TargetNotFound"
)

// setting is one effective value of a policy or route rule.
type setting struct {
	key    string // setting path, as in ir.Route.Sources / ir.Cluster.Sources
	source string // "BackendTrafficPolicy/ns/name spec.retry.numAttempts"
	// Exactly one of these is set.
	cluster func(*ir.Cluster)
	route   func(*ir.Route)
}

// layer is the settings of one policy (or route rule) for one target.
type layer struct {
	settings []setting
	// suffix names the cluster copy a route gets when this layer sets
	// backend settings (routes and Gateways only).
	suffix string
}

func (l *layer) hasCluster() bool {
	return l != nil && slices.ContainsFunc(l.settings, func(s setting) bool { return s.cluster != nil })
}

// policyTarget is one object a policy may attach to.
type policyTarget struct {
	kind, ns, name, section string
}

// attachedPolicy is a policy that won its target.
type attachedPolicy struct {
	key nsName
	l   *layer
}

// indexPolicies validates every BackendTrafficPolicy, settles conflicts and
// reports the status of each target. It runs before routes are compiled.
func (t *translator) indexPolicies() {
	type claim struct {
		p   *v1alpha1.BackendTrafficPolicy
		idx int
	}
	claims := map[policyTarget][]claim{}
	layers := map[*v1alpha1.BackendTrafficPolicy]*layer{}
	res := map[*v1alpha1.BackendTrafficPolicy]*status.Resource{}
	pols := slices.Clone(t.s.BackendTrafficPolicies)
	sort.SliceStable(pols, func(i, j int) bool {
		return precedes(pols[i].CreationTimestamp, pols[j].CreationTimestamp, nsName{pols[i].Namespace, pols[i].Name}, nsName{pols[j].Namespace, pols[j].Name})
	})
	for _, p := range pols {
		e := t.entry(kindBTP, p.Namespace, p.Name)
		res[p] = e
		l, err := compileBackendPolicy(p)
		if err != nil {
			e.Conditions = append(e.Conditions, cond(status.Accepted, false, status.ReasonInvalid, err.field, "%s", err.msg))
			continue
		}
		if len(p.Spec.TargetRefs) == 0 {
			e.Conditions = append(e.Conditions, cond(status.Accepted, false, status.ReasonInvalid, "spec.targetRefs", "at least one targetRef is required"))
			continue
		}
		layers[p] = l
		for i, tr := range p.Spec.TargetRefs {
			pt := policyTarget{kind: tr.Kind, ns: p.Namespace, name: tr.Name}
			if tr.SectionName != nil {
				pt.section = *tr.SectionName
			}
			parent := status.Parent{Ref: status.Ref{Kind: tr.Kind, Namespace: p.Namespace, Name: tr.Name}, SectionName: pt.section}
			field := fmt.Sprintf("spec.targetRefs[%d]", i)
			if c := t.checkTarget(tr, pt, l, field); c != nil {
				parent.Conditions = append(parent.Conditions, *c)
			} else if prev := claims[pt]; len(prev) > 0 {
				parent.Conditions = append(parent.Conditions, cond(status.Accepted, false, reasonConflicted, field,
					"%s %s/%s, older (or first by name), already targets %s %s; this target is ignored", kindBTP, prev[0].p.Namespace, prev[0].p.Name, tr.Kind, tr.Name))
			} else {
				claims[pt] = append(claims[pt], claim{p, i})
				parent.Conditions = append(parent.Conditions, cond(status.Accepted, true, status.ReasonAccepted, field, "the policy applies to %s %s", tr.Kind, tr.Name))
			}
			e.Parents = append(e.Parents, parent)
		}
	}
	t.policies = map[policyTarget]attachedPolicy{}
	for pt, cs := range claims {
		p := cs[0].p
		l := *layers[p]
		l.suffix = "/policy/" + p.Namespace + "/" + p.Name
		t.policies[pt] = attachedPolicy{key: nsName{p.Namespace, p.Name}, l: &l}
	}
}

// checkTarget returns why a target is not accepted, nil when it is.
func (t *translator) checkTarget(tr v1alpha1.PolicyTargetReference, pt policyTarget, l *layer, field string) *status.Condition {
	bad := func(reason, format string, args ...any) *status.Condition {
		c := cond(status.Accepted, false, reason, field, format, args...)
		return &c
	}
	found := false
	switch {
	case tr.Group == gatewayGroup && tr.Kind == "Gateway":
		found = slices.ContainsFunc(t.s.Gateways, func(g *gwv1.Gateway) bool { return g.Namespace == pt.ns && g.Name == pt.name })
	case tr.Group == gatewayGroup && tr.Kind == "HTTPRoute":
		found = slices.ContainsFunc(t.s.HTTPRoutes, func(r *gwv1.HTTPRoute) bool { return r.Namespace == pt.ns && r.Name == pt.name })
	case tr.Group == gatewayGroup && tr.Kind == kindGRPCRoute:
		found = slices.ContainsFunc(t.s.GRPCRoutes, func(r *gwv1.GRPCRoute) bool { return r.Namespace == pt.ns && r.Name == pt.name })
	case tr.Group == "" && tr.Kind == "Service":
		svc := t.services[nsName{pt.ns, pt.name}]
		found = svc != nil
		if found && pt.section != "" && !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == pt.section }) {
			return bad(reasonTargetNotFound, "Service %s/%s has no port named %q", pt.ns, pt.name, pt.section)
		}
	case tr.Group == v1alpha1.Group && tr.Kind == "Backend":
		found = t.backends[nsName{pt.ns, pt.name}] != nil
	default:
		return bad(status.ReasonInvalidKind, "target kind %q of group %q is not supported; use a Gateway, HTTPRoute or GRPCRoute (group %s), a Service (group \"\") or a Backend (group %s)",
			tr.Kind, tr.Group, gatewayGroup, v1alpha1.Group)
	}
	if pt.section != "" && tr.Kind != "Service" {
		return bad(status.ReasonInvalid, "sectionName is supported only for Service targets (a port name)")
	}
	if !found {
		return bad(reasonTargetNotFound, "%s %s/%s not found", tr.Kind, pt.ns, pt.name)
	}
	if tr.Kind == "Service" || tr.Kind == "Backend" {
		for _, s := range l.settings {
			if s.route != nil {
				_, f, _ := strings.Cut(s.source, " ")
				return bad(status.ReasonInvalid, "%s: retry, timeouts.request and faultInjection apply to routes; attach them to a Gateway or a route, not to a %s",
					f, tr.Kind)
			}
		}
	}
	return nil
}

// resolvePolicies applies the attached policies and the rules' own
// settings to the routes and clusters of cfg, made by build. Routes shared
// by several Gateways are copied per Gateway; routes whose backend
// settings differ from their clusters' get cluster copies. cfg.Clusters is
// recomputed.
func (t *translator) resolvePolicies(cfg *ir.Config) {
	// Service and Backend policies are the clusters' own settings.
	for _, c := range t.clusters {
		if l := t.clusterLayer(c); l != nil {
			applyLayers(c, []*layer{l})
		}
	}
	type routeKey struct {
		r  *ir.Route
		gw string
	}
	done := map[routeKey]*ir.Route{}
	for _, lst := range cfg.Listeners {
		for _, vh := range lst.VirtualHosts {
			for i, r := range vh.Routes {
				k := routeKey{r, vh.Gateway}
				if d := done[k]; d != nil {
					vh.Routes[i] = d
					continue
				}
				out := t.resolveRoute(r, vh.Gateway)
				done[k] = out
				vh.Routes[i] = out
			}
		}
	}
	used := map[string]bool{}
	for _, lst := range cfg.Listeners {
		for _, vh := range lst.VirtualHosts {
			for _, r := range vh.Routes {
				for _, b := range r.Backends {
					used[b.Cluster] = true
				}
				for _, m := range r.Mirrors {
					used[m.Cluster] = true
				}
			}
		}
	}
	cfg.Clusters = cfg.Clusters[:0]
	for name := range used {
		if c := t.clusters[name]; c != nil {
			cfg.Clusters = append(cfg.Clusters, c)
		}
	}
	sort.Slice(cfg.Clusters, func(i, j int) bool { return cfg.Clusters[i].Name < cfg.Clusters[j].Name })
}

// resolveRoute returns r with the settings of its Gateway's and its own
// policies, and its backends pointed at cluster copies where needed.
func (t *translator) resolveRoute(r *ir.Route, gateway string) *ir.Route {
	var gwl, rl *layer
	if ns, name, ok := strings.Cut(gateway, "/"); ok {
		gwl = t.policies[policyTarget{kind: "Gateway", ns: ns, name: name}].l
	}
	kind, ns, name, ruleSuffix := routeIdentity(r.Name)
	rl = t.policies[policyTarget{kind: kind, ns: ns, name: name}].l
	sl := sessionLayer(r, ruleSuffix)
	if gwl == nil && rl == nil && sl == nil {
		return r
	}
	out := *r
	out.Sources = cloneSources(r.Sources)
	// Request settings: Gateway, then route policy; the rule's own fields
	// (already in out, their keys in Sources) win over both.
	rule := out.Sources
	merged := map[string]setting{}
	for _, l := range []*layer{gwl, rl} {
		if l == nil {
			continue
		}
		for _, s := range l.settings {
			if s.route != nil && rule[s.key] == "" {
				merged[s.key] = s
			}
		}
	}
	keys := sortedKeys(merged)
	for _, k := range keys {
		merged[k].route(&out)
		if out.Sources == nil {
			out.Sources = map[string]string{}
		}
		out.Sources[k] = merged[k].source
	}
	finishRetry(&out)
	// Backend settings: a cluster copy when the Gateway or route policy,
	// or session persistence, sets any.
	suffix := ""
	for _, l := range []*layer{gwl, rl, sl} {
		if l.hasCluster() {
			suffix += l.suffix
		}
	}
	if suffix == "" {
		return &out
	}
	out.Backends = make([]*ir.Backend, len(r.Backends))
	for i, b := range r.Backends {
		nb := *b
		out.Backends[i] = &nb
		base := t.clusters[b.Cluster]
		if base == nil {
			continue
		}
		name := b.Cluster + suffix
		if t.clusters[name] == nil {
			cp := *base
			cp.Name = name
			cp.LoadBalancer, cp.HealthCheck, cp.Outlier, cp.CircuitBreaker = nil, nil, nil, nil
			cp.ConnectTimeout, cp.IdleTimeout, cp.Sources = 0, 0, nil
			// Most specific first: session persistence, the cluster's own
			// (Service/Backend) policy, route policy, Gateway policy.
			var ls []*layer
			for _, l := range []*layer{sl, t.clusterLayer(base), rl, gwl} {
				if l != nil {
					ls = append(ls, l)
				}
			}
			applyLayers(&cp, ls)
			t.clusters[name] = &cp
		}
		nb.Cluster = name
	}
	return &out
}

// clusterLayer is the policy attached to the Service port or Backend a
// cluster was made from, nil if none.
func (t *translator) clusterLayer(c *ir.Cluster) *layer {
	kind, rest, ok := strings.Cut(c.Origin, "/")
	if !ok {
		return nil
	}
	ns, rest, _ := strings.Cut(rest, "/")
	name, port, _ := strings.Cut(rest, ":")
	if kind != "Service" && kind != "Backend" {
		return nil
	}
	if kind == "Service" && port != "" {
		if svc := t.services[nsName{ns, name}]; svc != nil {
			for _, p := range svc.Spec.Ports {
				if fmt.Sprint(p.Port) == port && p.Name != "" {
					if ap := t.policies[policyTarget{kind: kind, ns: ns, name: name, section: p.Name}]; ap.l != nil {
						return ap.l
					}
				}
			}
		}
	}
	return t.policies[policyTarget{kind: kind, ns: ns, name: name}].l
}

// applyLayers applies the cluster settings of ls (most specific first) to
// c, recording their sources.
func applyLayers(c *ir.Cluster, ls []*layer) {
	merged := map[string]setting{}
	for i := len(ls) - 1; i >= 0; i-- {
		for _, s := range ls[i].settings {
			if s.cluster != nil {
				merged[s.key] = s
			}
		}
	}
	for _, k := range sortedKeys(merged) {
		merged[k].cluster(c)
		if c.Sources == nil {
			c.Sources = map[string]string{}
		}
		c.Sources[k] = merged[k].source
	}
}

func sortedKeys(m map[string]setting) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func cloneSources(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// routeIdentity splits "httproute/NS/NAME/rule/R/match/M" into the
// route's kind, namespace, name and "httproute/NS/NAME/rule/R".
func routeIdentity(name string) (kind, ns, n, rule string) {
	parts := strings.SplitN(name, "/", 6)
	if len(parts) < 5 {
		return "", "", "", ""
	}
	switch parts[0] {
	case "httproute":
		kind = "HTTPRoute"
	case "grpcroute":
		kind = kindGRPCRoute
	}
	return kind, parts[1], parts[2], strings.Join(parts[:5], "/")
}

// finishRetry fills the defaults of a retry policy.
func finishRetry(r *ir.Route) {
	rt := r.Retry
	if rt == nil {
		return
	}
	if r.Sources["retry.attempts"] == "" {
		rt.Attempts = 2
	}
	if len(rt.On) == 0 {
		// Connection failures, resets and timeouts are always retried
		// (Gateway API asks it of a retry stanza); responses only by the
		// codes listed, or 502-504 when none is.
		rt.On = []string{ir.RetryOnConnectFailure, ir.RetryOnReset}
		if len(rt.StatusCodes) > 0 {
			rt.On = append(rt.On, ir.RetryOnStatusCodes)
		} else {
			rt.On = append(rt.On, ir.RetryOnGatewayError)
		}
		if r.GRPC {
			rt.On = append(rt.On, ir.RetryOnUnavailable)
		}
	}
	if len(rt.StatusCodes) > 0 && !slices.Contains(rt.On, ir.RetryOnStatusCodes) {
		rt.On = append(slices.Clip(rt.On), ir.RetryOnStatusCodes)
	}
	if r.Sources["retry.budgetPercent"] == "" {
		rt.BudgetPercent = 20
	}
	if r.Sources["retry.minRetryConcurrency"] == "" {
		rt.MinRetryConcurrency = 3
	}
}

// sessionLayer turns a rule's session persistence into consistent hashing
// of its clusters on the session cookie or header.
func sessionLayer(r *ir.Route, ruleName string) *layer {
	sp := r.SessionPersistence
	if sp == nil {
		return nil
	}
	src := r.Sources["sessionPersistence"]
	key := ir.HashKey{Header: sp.Name}
	if sp.Type == ir.SessionCookie {
		hc := &ir.HashCookie{Name: sp.Name, Path: "/"}
		if sp.CookieLifetime == ir.CookiePermanent {
			hc.TTL = sp.AbsoluteTimeout
		}
		key = ir.HashKey{Cookie: hc}
	}
	return &layer{
		suffix: "/session/" + ruleName,
		settings: []setting{
			{key: "loadBalancer.policy", source: src, cluster: func(c *ir.Cluster) { lb(c).Policy = ir.LBRingHash }},
			{key: "loadBalancer.hashOn", source: src, cluster: func(c *ir.Cluster) { lb(c).HashOn = []ir.HashKey{key} }},
		},
	}
}

// ruleResilience is what a route rule's own Gateway API fields (retry,
// sessionPersistence, timeouts) set, validated once per rule.
type ruleResilience struct {
	retry   *ir.Retry
	session *ir.SessionPersistence
	sources map[string]string
}

// compileRuleResilience validates the Gateway API retry and session
// persistence of a rule. origin is "HTTPRoute/ns/name", field the rule's
// path; to is the rule's already validated timeouts.
func compileRuleResilience(origin, field string, retry *gwv1.HTTPRouteRetry, sp *gwv1.SessionPersistence, to ir.Timeouts) (*ruleResilience, *fieldErr) {
	rr := &ruleResilience{sources: map[string]string{}}
	src := func(f string) string { return origin + " " + field + "." + f }
	if to.Request != 0 {
		rr.sources["timeouts.request"] = src("timeouts.request")
	}
	if to.BackendRequest != 0 {
		rr.sources["timeouts.backendRequest"] = src("timeouts.backendRequest")
	}
	if retry != nil {
		rt := &ir.Retry{}
		if retry.Attempts != nil {
			if *retry.Attempts < 0 || *retry.Attempts > 100 {
				return nil, unsupported(field+".retry.attempts", "attempts %d is out of range 0-100", *retry.Attempts)
			}
			rt.Attempts = *retry.Attempts
			rr.sources["retry.attempts"] = src("retry.attempts")
		}
		for i, c := range retry.Codes {
			if c < 400 || c > 599 {
				return nil, unsupported(fmt.Sprintf("%s.retry.codes[%d]", field, i), "status code %d is out of range 400-599", c)
			}
			rt.StatusCodes = append(rt.StatusCodes, int(c))
		}
		if len(rt.StatusCodes) > 0 {
			rr.sources["retry.statusCodes"] = src("retry.codes")
		}
		if retry.Backoff != nil {
			d, err := parseDuration(*retry.Backoff, field+".retry.backoff")
			if err != nil {
				return nil, err
			}
			rt.BackoffBase = d
			rr.sources["retry.backoffBase"] = src("retry.backoff")
		}
		rr.retry = rt
	}
	if sp != nil {
		f := field + ".sessionPersistence"
		s := &ir.SessionPersistence{Type: ir.SessionCookie, CookieLifetime: ir.CookieSession}
		if sp.Type != nil {
			s.Type = ir.SessionType(*sp.Type)
		}
		if s.Type != ir.SessionCookie && s.Type != ir.SessionHeader {
			return nil, unsupported(f+".type", "session persistence type %q is not supported; use Cookie or Header", s.Type)
		}
		if sp.SessionName != nil {
			s.Name = *sp.SessionName
		}
		if s.Name == "" {
			s.Name = "causeway-session"
		}
		if s.Type == ir.SessionHeader {
			if !validHeaderName(s.Name) {
				return nil, unsupported(f+".sessionName", "%q is not a valid header name", s.Name)
			}
			s.Name = textproto.CanonicalMIMEHeaderKey(s.Name)
		} else if !validHeaderName(s.Name) {
			return nil, unsupported(f+".sessionName", "%q is not a valid cookie name", s.Name)
		}
		if sp.AbsoluteTimeout != nil {
			d, err := parseDuration(*sp.AbsoluteTimeout, f+".absoluteTimeout")
			if err != nil {
				return nil, err
			}
			s.AbsoluteTimeout = d
		}
		if sp.CookieConfig != nil && sp.CookieConfig.LifetimeType != nil {
			s.CookieLifetime = ir.CookieLifetime(*sp.CookieConfig.LifetimeType)
			if s.CookieLifetime != ir.CookiePermanent && s.CookieLifetime != ir.CookieSession {
				return nil, unsupported(f+".cookieConfig.lifetimeType", "lifetimeType %q is not supported; use Permanent or Session", s.CookieLifetime)
			}
			if s.CookieLifetime == ir.CookiePermanent && s.AbsoluteTimeout == 0 {
				return nil, unsupported(f+".absoluteTimeout", "absoluteTimeout is required with lifetimeType Permanent")
			}
		}
		if s.Type == ir.SessionHeader {
			s.CookieLifetime = ""
		}
		rr.session = s
		rr.sources["sessionPersistence"] = origin + " " + f
	}
	return rr, nil
}

// apply sets the rule's settings on one of its IR routes.
func (rr *ruleResilience) apply(r *ir.Route) {
	if rr == nil {
		return
	}
	if rr.retry != nil {
		rt := *rr.retry
		r.Retry = &rt
	}
	r.SessionPersistence = rr.session
	if len(rr.sources) > 0 {
		r.Sources = cloneSources(rr.sources)
	}
	finishRetry(r)
}

func lb(c *ir.Cluster) *ir.LoadBalancer {
	if c.LoadBalancer == nil {
		c.LoadBalancer = &ir.LoadBalancer{Policy: ir.LBRoundRobin}
	}
	return c.LoadBalancer
}

// ensure returns *p, allocating a zero T there first when it is nil: a
// policy field creates the IR section it sets.
func ensure[T any](p **T) *T {
	if *p == nil {
		*p = new(T)
	}
	return *p
}

func dur(d *metav1.Duration) ir.Duration { return ir.Duration(d.Duration) }
