package translate

import (
	"fmt"
	"net/textproto"
	"regexp"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/status"
)

// compiledRoute is an HTTPRoute's or a GRPCRoute's rules in IR form,
// computed once and placed on every listener the route attaches to.
type compiledRoute struct {
	obj         *gwv1.HTTPRoute // nil for a GRPCRoute
	kind        string          // "HTTPRoute" or "GRPCRoute"
	parents     []gwv1.ParentReference
	created     metav1.Time
	key         nsName
	hosts       []string
	hostProblem *fieldErr
	entries     []*entry
	rules       int
	dropped     []*fieldErr // one per dropped rule
	refProblems []status.Condition
}

// entry is one IR route (one match of one rule) with what orders it and,
// once placed, where.
type entry struct {
	route   *ir.Route
	created metav1.Time
	key     nsName
	rule    int
	match   int

	domain   string // effective domain
	listener string // domain form of the listener hostname it came through
	gwOrder  int

	grpc *grpcRank // set for GRPCRoute entries (grpcroute.go)
}

// translateRoutes compiles and attaches HTTPRoutes and GRPCRoutes, oldest
// first: an older route claims a listener hostname before a newer one of
// the other kind can (see attach).
func (t *translator) translateRoutes() {
	crs := make([]*compiledRoute, 0, len(t.s.HTTPRoutes)+len(t.s.GRPCRoutes))
	for _, hr := range t.s.HTTPRoutes {
		crs = append(crs, t.compileRoute(hr))
	}
	for _, gr := range t.s.GRPCRoutes {
		crs = append(crs, t.compileGRPCRoute(gr))
	}
	sort.SliceStable(crs, func(i, j int) bool { return precedes(crs[i].created, crs[j].created, crs[i].key, crs[j].key) })
	for _, cr := range crs {
		res := t.entry(cr.kind, cr.key.ns, cr.key.name)
		if len(cr.parents) == 0 {
			res.Conditions = append(res.Conditions, cond(status.Accepted, false, status.ReasonNoMatchingParent, "spec.parentRefs",
				"the route has no parentRefs, so it is attached to no Gateway"))
			continue
		}
		attached := map[*listener]bool{}
		for i := range cr.parents {
			res.Parents = append(res.Parents, withRefs(t.attach(cr, i, attached), cr.refsCond))
		}
	}
}

// withRefs adds ResolvedRefs to a parent status that was rejected before
// its references were looked at: Gateway API wants both conditions on
// every parent status (a rejected parent is not a reason to hide a missing
// backend). Parents of other controllers are left alone.
func withRefs(p status.Parent, refs func() status.Condition) status.Parent {
	for _, c := range p.Conditions {
		if c.Type == status.ResolvedRefs || c.Type == condIgnored {
			return p
		}
	}
	p.Conditions = append(p.Conditions, refs())
	return p
}

// compileRoute validates the route's hostnames and compiles its rules.
func (t *translator) compileRoute(hr *gwv1.HTTPRoute) *compiledRoute {
	cr := &compiledRoute{obj: hr, kind: "HTTPRoute", parents: hr.Spec.ParentRefs, created: hr.CreationTimestamp,
		key: nsName{hr.Namespace, hr.Name}, rules: len(hr.Spec.Rules)}
	cr.compileHostnames(hr.Spec.Hostnames)
	for ri := range hr.Spec.Rules {
		entries, refs, err := t.compileRule(cr, ri)
		cr.refProblems = append(cr.refProblems, refs...)
		if err != nil {
			cr.dropped = append(cr.dropped, err)
			continue
		}
		cr.entries = append(cr.entries, entries...)
	}
	return cr
}

// compileHostnames validates the route's hostnames into cr.hosts.
func (cr *compiledRoute) compileHostnames(hs []gwv1.Hostname) {
	for i, h := range hs {
		if err := validHostname(string(h), true); err != nil {
			cr.hostProblem = unsupported(fmt.Sprintf("spec.hostnames[%d]", i), "%v", err)
			break
		}
		cr.hosts = append(cr.hosts, string(h))
	}
}

// compileRule turns one rule into one entry per match.
func (t *translator) compileRule(cr *compiledRoute, ri int) ([]*entry, []status.Condition, *fieldErr) {
	rule := &cr.obj.Spec.Rules[ri]
	field := fmt.Sprintf("spec.rules[%d]", ri)
	matches := rule.Matches
	if len(matches) == 0 {
		matches = []gwv1.HTTPRouteMatch{{}}
	}
	irMatches := make([]ir.Match, len(matches))
	for mi := range matches {
		m, err := compileMatch(&matches[mi], fmt.Sprintf("%s.matches[%d]", field, mi))
		if err != nil {
			return nil, nil, err
		}
		irMatches[mi] = m
	}
	f, refProblems, err := t.compileFilters(cr.kind, cr.key.ns, rule.Filters, field)
	if err != nil {
		return nil, nil, err
	}
	if f.prefixRewrite != "" && (len(irMatches) != 1 || irMatches[0].Path.Type != ir.PathPrefix) {
		return nil, refProblems, unsupported(f.prefixRewrite, "ReplacePrefixMatch needs the rule to have exactly one match, of type PathPrefix")
	}
	to, err := timeouts(rule.Timeouts, field+".timeouts")
	if err != nil {
		return nil, refProblems, err
	}
	res, err := compileRuleResilience("HTTPRoute/"+cr.key.String(), field, rule.Retry, rule.SessionPersistence, to)
	if err != nil {
		return nil, refProblems, err
	}
	if f.redirect != nil && len(rule.BackendRefs) > 0 {
		return nil, refProblems, &fieldErr{field: field + ".backendRefs", reason: reasonIncompatibleFilters,
			msg: "a rule with a RequestRedirect filter may not have backendRefs"}
	}
	var backends []*ir.Backend
	for bi := range rule.BackendRefs {
		br := &rule.BackendRefs[bi]
		bfield := fmt.Sprintf("%s.backendRefs[%d]", field, bi)
		weight := int32(1)
		if br.Weight != nil {
			weight = *br.Weight
		}
		if weight < 0 || weight > 1000000 {
			return nil, refProblems, unsupported(bfield+".weight", "weight %d is out of range 0-1000000", weight)
		}
		req, resp, ferr := backendFilters(br.Filters, bfield)
		if ferr != nil {
			return nil, refProblems, ferr
		}
		ref := t.resolveBackend(cr.kind, cr.key.ns, br.BackendObjectReference, bfield)
		if ref.problem != nil {
			refProblems = append(refProblems, *ref.problem)
		}
		if weight == 0 {
			continue // no traffic; the reference is still checked above
		}
		backends = append(backends, &ir.Backend{Cluster: ref.cluster, Weight: weight, RequestHeaders: req, ResponseHeaders: resp, Name: ref.name,
			CORS: backendCORS(br.Filters)})
	}
	entries := make([]*entry, len(irMatches))
	for mi, m := range irMatches {
		origin := fmt.Sprintf("HTTPRoute/%s %s", cr.key, field)
		if len(rule.Matches) > 0 {
			origin += fmt.Sprintf(".matches[%d]", mi)
		}
		entries[mi] = &entry{
			route: &ir.Route{
				Name:            fmt.Sprintf("httproute/%s/%s/rule/%d/match/%d", cr.key.ns, cr.key.name, ri, mi),
				Origin:          origin,
				Match:           m,
				RequestHeaders:  f.reqHeaders,
				ResponseHeaders: f.respHeaders,
				Redirect:        f.redirect,
				Rewrite:         f.rewrite,
				Mirrors:         f.mirrors,
				CORS:            f.cors,
				Backends:        backends,
				Timeouts:        to,
			},
			created: cr.obj.CreationTimestamp,
			key:     cr.key,
			rule:    ri,
			match:   mi,
		}
	}
	for _, e := range entries {
		res.apply(e.route)
	}
	return entries, refProblems, nil
}

var methods = map[gwv1.HTTPMethod]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

// compileMatch converts one match, applying the CRD defaults the API
// server would (PathPrefix "/", Exact) since files are not defaulted.
func compileMatch(m *gwv1.HTTPRouteMatch, field string) (ir.Match, *fieldErr) {
	out := ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/"}}
	if p := m.Path; p != nil {
		if p.Type != nil {
			out.Path.Type = ir.PathMatchType(*p.Type)
		}
		if p.Value != nil {
			out.Path.Value = *p.Value
		}
		pf := field + ".path"
		switch out.Path.Type {
		case ir.PathExact, ir.PathPrefix:
			if err := validPath(out.Path.Value); err != nil {
				return out, unsupported(pf+".value", "%v", err)
			}
			if out.Path.Type == ir.PathPrefix && len(out.Path.Value) > 1 {
				// Gateway API: "a trailing / is ignored".
				out.Path.Value = strings.TrimRight(out.Path.Value, "/")
			}
		case ir.PathRegex:
			if _, err := regexp.Compile(out.Path.Value); err != nil {
				return out, unsupported(pf+".value", "invalid regular expression (RE2 syntax): %v", err)
			}
		default:
			return out, unsupported(pf+".type", "path match type %q is not supported; use Exact, PathPrefix or RegularExpression", out.Path.Type)
		}
	}
	seen := map[string]bool{}
	for i, h := range m.Headers {
		hf := fmt.Sprintf("%s.headers[%d]", field, i)
		if !validHeaderName(string(h.Name)) {
			return out, unsupported(hf+".name", "%q is not a valid header name", h.Name)
		}
		name := textproto.CanonicalMIMEHeaderKey(string(h.Name))
		if seen[name] {
			continue // Gateway API: only the first entry of a name counts
		}
		seen[name] = true
		sm, err := stringMatch(name, (*string)(h.Type), h.Value, hf)
		if err != nil {
			return out, err
		}
		out.Headers = append(out.Headers, sm)
	}
	seen = map[string]bool{}
	for i, q := range m.QueryParams {
		qf := fmt.Sprintf("%s.queryParams[%d]", field, i)
		name := string(q.Name)
		if name == "" {
			return out, unsupported(qf+".name", "the query parameter name is empty")
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		sm, err := stringMatch(name, (*string)(q.Type), q.Value, qf)
		if err != nil {
			return out, err
		}
		out.Query = append(out.Query, sm)
	}
	if m.Method != nil {
		if !methods[*m.Method] {
			return out, unsupported(field+".method", "method %q is not supported; use an upper-case HTTP method such as GET", *m.Method)
		}
		out.Method = string(*m.Method)
	}
	return out, nil
}

func stringMatch(name string, typ *string, value, field string) (ir.StringMatch, *fieldErr) {
	sm := ir.StringMatch{Name: name, Type: ir.MatchExact, Value: value}
	if typ != nil {
		sm.Type = ir.StringMatchType(*typ)
	}
	switch sm.Type {
	case ir.MatchExact:
	case ir.MatchRegex:
		if _, err := regexp.Compile(value); err != nil {
			return sm, unsupported(field+".value", "invalid regular expression (RE2 syntax): %v", err)
		}
	default:
		return sm, unsupported(field+".type", "match type %q is not supported; use Exact or RegularExpression", sm.Type)
	}
	return sm, nil
}

// pathChars are the characters Gateway API allows in Exact and PathPrefix
// values.
var pathChars = regexp.MustCompile(`^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$`)

// validPath applies Gateway API's syntax rules to Exact and PathPrefix
// values.
func validPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q must start with /", p)
	case strings.Contains(p, "//"), strings.Contains(p, "/./"), strings.Contains(p, "/../"),
		strings.HasSuffix(p, "/.."), strings.HasSuffix(p, "/."):
		return fmt.Errorf("path %q must be normalised: no //, /./ or /../ segments", p)
	case strings.Contains(strings.ToLower(p), "%2f"):
		return fmt.Errorf("path %q must not contain an encoded slash", p)
	case !pathChars.MatchString(p):
		return fmt.Errorf("path %q contains characters that are not allowed", p)
	}
	return nil
}

// attach evaluates one parentRef: which listeners take the route, the
// parent status, and places the route's entries on the listeners' sockets.
// attached collects listeners already counted for this route, so that two
// parentRefs selecting one listener count once.
func (t *translator) attach(cr *compiledRoute, idx int, attached map[*listener]bool) status.Parent {
	pr := cr.parents[idx]
	pt, found := t.resolveParent(pr, cr.key.ns, idx, cr.hostProblem)
	if !found {
		return pt.p
	}
	p, field, g, candidates := pt.p, pt.field, pt.g, pt.candidates
	reject := func(reason, format string, args ...any) status.Parent {
		p.Conditions = append(p.Conditions, cond(status.Accepted, false, reason, field, format, args...))
		return p
	}
	allowed, matched, ok := 0, 0, 0
	var conflict *claim
	for _, l := range candidates {
		if !l.accepted || !t.allows(l, cr.key.ns, cr.kind) {
			continue
		}
		allowed++
		ds := domains(cr.hosts, l.hostname)
		if len(ds) == 0 {
			continue
		}
		matched++
		if c := l.conflict(cr.kind, len(cr.hosts) > 0, ds); c != nil {
			conflict = c
			continue
		}
		ok++
		if cr.rules > 0 && len(cr.dropped) == cr.rules {
			continue // nothing to serve: not counted as attached
		}
		if !attached[l] {
			attached[l] = true
			l.st.AttachedRoutes++
			l.claims = append(l.claims, claim{kind: cr.kind, key: cr.key, domains: ds, explicit: len(cr.hosts) > 0})
		}
		if !l.programmed {
			continue
		}
		for _, s := range l.sockets {
			for _, d := range ds {
				for _, e := range cr.entries {
					placed := *e
					placed.domain, placed.listener, placed.gwOrder = d, listenerDomain(l.hostname), g.order
					s.entries = append(s.entries, &placed)
				}
			}
		}
	}
	switch {
	case allowed == 0:
		return reject(status.ReasonNotAllowedByListeners, "no listener of %s%s allows %ss from namespace %s (see allowedRoutes and the listener conditions)",
			pt.parent, selectorText(pr), cr.kind, cr.key.ns)
	case matched == 0:
		return reject(status.ReasonNoMatchingListenerHostname, "the route's hostnames %s match no listener hostname of %s%s",
			strings.Join(cr.hosts, ", "), pt.parent, selectorText(pr))
	case ok == 0:
		return reject(status.ReasonNotAllowedByListeners, "%s %s, attached earlier (older, or first by namespace/name), shares hostnames with this route on %s%s; "+
			"Gateway API accepts only one of an HTTPRoute and a GRPCRoute with overlapping hostnames on a listener", conflict.kind, conflict.key, pt.parent, selectorText(pr))
	}
	p.Conditions = append(p.Conditions, cr.acceptedCond(), cr.refsCond())
	if len(cr.dropped) > 0 && len(cr.dropped) < cr.rules {
		p.Conditions = append(p.Conditions, cond(condPartiallyInvalid, true, status.ReasonUnsupportedValue, cr.dropped[0].field,
			"%s", cr.droppedText()))
	}
	return p
}

func selectorText(pr gwv1.ParentReference) string {
	var s string
	if pr.SectionName != nil {
		s += fmt.Sprintf(" named %q", *pr.SectionName)
	}
	if pr.Port != nil {
		s += fmt.Sprintf(" on port %d", *pr.Port)
	}
	return s
}

// droppedText is "Dropped Rule 1: field: why; ..." as Gateway API asks.
func (cr *compiledRoute) droppedText() string {
	parts := make([]string, len(cr.dropped))
	for i, e := range cr.dropped {
		parts[i] = e.Error()
	}
	return "Dropped Rule(s): " + strings.Join(parts, "; ")
}

// acceptedCond is the Accepted condition of an attached route: False when
// rules were dropped (so that validation flags them), with a message
// saying which and whether the others are served.
func (cr *compiledRoute) acceptedCond() status.Condition {
	if len(cr.dropped) == 0 {
		return cond(status.Accepted, true, status.ReasonAccepted, "", "the route is attached")
	}
	reason := cr.dropped[0].reason
	tail := "; the other rules are served"
	if len(cr.dropped) == cr.rules {
		tail = "; no rule is left to serve"
	}
	return cond(status.Accepted, false, reason, cr.dropped[0].field, "%s%s", cr.droppedText(), tail)
}

// refsCond is the ResolvedRefs condition: the first problem's reason, and
// every problem in the message.
func (cr *compiledRoute) refsCond() status.Condition {
	if len(cr.refProblems) == 0 {
		return cond(status.ResolvedRefs, true, status.ReasonResolvedRefs, "", "all references are resolved")
	}
	parts := make([]string, len(cr.refProblems))
	for i, c := range cr.refProblems {
		parts[i] = c.Field + ": " + c.Message
	}
	first := cr.refProblems[0]
	return cond(status.ResolvedRefs, false, first.Reason, first.Field, "%s", strings.Join(parts, "; "))
}

// parentTarget is a parentRef resolved to a Gateway and the listeners its
// sectionName and port select.
type parentTarget struct {
	p          status.Parent
	field      string
	g          *gateway
	parent     string // "Gateway ns/name" or "ListenerSet ns/name", for messages
	candidates []*listener
}

// resolveParent evaluates what every route kind checks the same way for
// one parentRef: the parent's kind, the Gateway, whether it is ours and
// accepted, and the listeners selected. When ok is false, pt.p is the
// parent's final status.
func (t *translator) resolveParent(pr gwv1.ParentReference, routeNS string, idx int, hostProblem *fieldErr) (pt parentTarget, ok bool) {
	field := fmt.Sprintf("spec.parentRefs[%d]", idx)
	group, kind, ns := gatewayGroup, "Gateway", routeNS
	if pr.Group != nil {
		group = string(*pr.Group)
	}
	if pr.Kind != nil {
		kind = string(*pr.Kind)
	}
	if pr.Namespace != nil && *pr.Namespace != "" {
		ns = string(*pr.Namespace)
	}
	p := status.Parent{Ref: status.Ref{Kind: kind, Namespace: ns, Name: string(pr.Name)}}
	if pr.SectionName != nil {
		p.SectionName = string(*pr.SectionName)
	}
	if pr.Port != nil {
		p.Port = *pr.Port
	}
	reject := func(reason, format string, args ...any) (parentTarget, bool) {
		p.Conditions = append(p.Conditions, cond(status.Accepted, false, reason, field, format, args...))
		return parentTarget{p: p}, false
	}
	if group == gatewayGroup && kind == "ListenerSet" {
		return t.resolveListenerSet(pr, p, field, ns, hostProblem)
	}
	if group != gatewayGroup || kind != "Gateway" {
		return reject(status.ReasonInvalidKind, "parent kind %q of group %q is not supported; only Gateway and ListenerSet", kind, group)
	}
	g := t.gateways[nsName{ns, string(pr.Name)}]
	switch {
	case g == nil:
		return reject(status.ReasonNoMatchingParent, "Gateway %s/%s not found", ns, pr.Name)
	case !g.ours:
		p.Conditions = append(p.Conditions, cond(condIgnored, true, status.ReasonNotReconciled, field,
			"Gateway %s is not managed by %s: %s", g.key, t.ctrl, g.why))
		return parentTarget{p: p}, false
	case !g.accepted:
		return reject(status.ReasonNoMatchingParent, "Gateway %s is not accepted: %s", g.key, g.why)
	}
	var candidates []*listener
	for _, l := range g.listeners {
		if (pr.SectionName == nil || string(*pr.SectionName) == l.name) && (pr.Port == nil || int(*pr.Port) == l.port) {
			candidates = append(candidates, l)
		}
	}
	if len(candidates) == 0 {
		return reject(status.ReasonNoMatchingParent, "Gateway %s has no listener%s", g.key, selectorText(pr))
	}
	if hostProblem != nil {
		return reject(status.ReasonUnsupportedValue, "%s: %s", hostProblem.field, hostProblem.msg)
	}
	return parentTarget{p: p, field: field, g: g, parent: "Gateway " + g.key.String(), candidates: candidates}, true
}
