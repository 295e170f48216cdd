package translate

import (
	"fmt"
	"net/textproto"
	"regexp"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/status"
)

// A GRPCRoute becomes ordinary IR routes marked GRPC: a gRPC call is an
// HTTP/2 POST to "/package.Service/Method", so service and method matches
// are path matches, and header matches stay header matches. The POST
// method is implied by gRPC and not matched.
//
//	service and method, Exact   → path Exact "/pkg.Service/Method"
//	service only, Exact         → path PathPrefix "/pkg.Service" (element-wise)
//	method only, Exact          → path RegularExpression "/[^/]+/Method"
//	RegularExpression           → path RegularExpression "/(?:S)/(?:M)", an
//	                              empty side being "[^/]+"
//	no method match             → path PathPrefix "/"
//
// Backends are spoken to with HTTP/2 cleartext whatever the Service port's
// appProtocol says, since gRPC needs HTTP/2 (grpcCluster).

const kindGRPCRoute = "GRPCRoute"

// grpcRank is what Gateway API orders GRPCRoute rules by within a host:
// characters in the matching service, then in the matching method (then
// header matches, from the IR match).
type grpcRank struct {
	service, method int
	// regex breaks ties between an Exact and a RegularExpression match of
	// the same lengths (implementation-specific): Exact first.
	regex bool
}

// grpcCompare orders two GRPCRoute entries by Gateway API's GRPCRoute
// precedence: more service characters, more method characters, more header
// matches first. It returns 0 when either entry is not from a GRPCRoute or
// they tie, leaving the common tie-breaks (age, name, rule and match order)
// to entryLess.
func grpcCompare(a, b *entry) int {
	ra, rb := a.grpc, b.grpc
	switch {
	case ra == nil || rb == nil:
		return 0
	case ra.service != rb.service:
		return rb.service - ra.service
	case ra.method != rb.method:
		return rb.method - ra.method
	}
	if ha, hb := len(a.route.Match.Headers), len(b.route.Match.Headers); ha != hb {
		return hb - ha
	}
	if ra.regex != rb.regex {
		if ra.regex {
			return 1
		}
		return -1
	}
	return 0
}

// claim is a route attached to a listener, kept for Gateway API's rule that
// an HTTPRoute and a GRPCRoute whose hostnames intersect cannot both attach
// to one listener: the older (then first by namespace/name) wins. Routes
// attach oldest first, so the first claim of the other kind wins.
type claim struct {
	kind    string
	key     nsName
	domains []string // effective domains on the listener
	// explicit: the route names hostnames (see conflict).
	explicit bool
}

// conflict returns the claim of the other route kind on l that shares a
// hostname with domains ds, or nil. Only routes that name hostnames
// conflict: one without hostnames inherits the listener's and is served
// beside the other kind, whose specific matches (a gRPC method is an exact
// POST path) take precedence. The conformance suite relies on this: its
// GRPCRoutes without hostnames share a Gateway with HTTPRoutes that name
// some, and all must be accepted.
func (l *listener) conflict(kind string, explicit bool, ds []string) *claim {
	if !explicit {
		return nil
	}
	for i := range l.claims {
		c := &l.claims[i]
		if !c.explicit || c.kind == kind || (c.kind != kindGRPCRoute && kind != kindGRPCRoute) {
			continue
		}
		for _, a := range c.domains {
			for _, b := range ds {
				if covers(a, b) || covers(b, a) {
					return c
				}
			}
		}
	}
	return nil
}

// grpcCluster returns the name of an h2c cluster with the endpoints of
// cluster name: name itself when it already speaks h2c, otherwise a copy
// named name+"/h2c", so that an HTTPRoute may keep using the HTTP/1.1
// cluster of the same Service port.
func (t *translator) grpcCluster(name string) string {
	c := t.clusters[name]
	if c == nil || c.Protocol == ir.UpstreamH2C {
		return name
	}
	h := name + "/h2c"
	if t.clusters[h] == nil {
		cp := *c
		cp.Name, cp.Protocol = h, ir.UpstreamH2C
		t.clusters[h] = &cp
	}
	return h
}

// compileGRPCRoute validates a GRPCRoute's hostnames and compiles its rules.
func (t *translator) compileGRPCRoute(gr *gwv1.GRPCRoute) *compiledRoute {
	cr := &compiledRoute{kind: kindGRPCRoute, parents: gr.Spec.ParentRefs, created: gr.CreationTimestamp,
		key: nsName{gr.Namespace, gr.Name}, rules: len(gr.Spec.Rules)}
	cr.compileHostnames(gr.Spec.Hostnames)
	for ri := range gr.Spec.Rules {
		entries, refs, err := t.compileGRPCRule(cr, &gr.Spec.Rules[ri], ri)
		cr.refProblems = append(cr.refProblems, refs...)
		if err != nil {
			cr.dropped = append(cr.dropped, err)
			continue
		}
		cr.entries = append(cr.entries, entries...)
	}
	return cr
}

// compileGRPCRule turns one rule into one entry per match.
func (t *translator) compileGRPCRule(cr *compiledRoute, rule *gwv1.GRPCRouteRule, ri int) ([]*entry, []status.Condition, *fieldErr) {
	field := fmt.Sprintf("spec.rules[%d]", ri)
	res, err := compileRuleResilience(kindGRPCRoute+"/"+cr.key.String(), field, nil, rule.SessionPersistence, ir.Timeouts{})
	if err != nil {
		return nil, nil, err
	}
	matches := rule.Matches
	if len(matches) == 0 {
		matches = []gwv1.GRPCRouteMatch{{}}
	}
	irMatches := make([]ir.Match, len(matches))
	ranks := make([]grpcRank, len(matches))
	for mi := range matches {
		m, rank, err := compileGRPCMatch(&matches[mi], fmt.Sprintf("%s.matches[%d]", field, mi))
		if err != nil {
			return nil, nil, err
		}
		irMatches[mi], ranks[mi] = m, rank
	}
	fs, err := grpcFilters(rule.Filters, field)
	if err != nil {
		return nil, nil, err
	}
	f, refProblems, err := t.compileFilters(kindGRPCRoute, cr.key.ns, fs, field)
	if err != nil {
		return nil, nil, err
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
		bfs, ferr := grpcFilters(br.Filters, bfield)
		if ferr != nil {
			return nil, refProblems, ferr
		}
		req, resp, ferr := backendFilters(bfs, bfield)
		if ferr != nil {
			return nil, refProblems, ferr
		}
		ref := t.resolveBackend(kindGRPCRoute, cr.key.ns, br.BackendObjectReference, bfield)
		if ref.problem != nil {
			refProblems = append(refProblems, *ref.problem)
		}
		if weight == 0 {
			continue // no traffic; the reference is still checked above
		}
		backends = append(backends, &ir.Backend{Cluster: ref.cluster, Weight: weight, RequestHeaders: req, ResponseHeaders: resp, Name: ref.name})
	}
	entries := make([]*entry, len(irMatches))
	for mi, m := range irMatches {
		origin := fmt.Sprintf("%s/%s %s", kindGRPCRoute, cr.key, field)
		if len(rule.Matches) > 0 {
			origin += fmt.Sprintf(".matches[%d]", mi)
		}
		entries[mi] = &entry{
			route: &ir.Route{
				Name:            fmt.Sprintf("grpcroute/%s/%s/rule/%d/match/%d", cr.key.ns, cr.key.name, ri, mi),
				Origin:          origin,
				Match:           m,
				RequestHeaders:  f.reqHeaders,
				ResponseHeaders: f.respHeaders,
				Mirrors:         f.mirrors,
				Backends:        backends,
				GRPC:            true,
			},
			created: cr.created,
			key:     cr.key,
			rule:    ri,
			match:   mi,
			grpc:    &ranks[mi],
		}
		res.apply(entries[mi].route)
	}
	return entries, refProblems, nil
}

// grpcFilters converts GRPCRoute filters to their HTTPRoute twins (the
// same configuration types), refusing the types GRPCRoute does not have.
// ExtensionRef passes through to be refused by compileFilters.
func grpcFilters(fs []gwv1.GRPCRouteFilter, field string) ([]gwv1.HTTPRouteFilter, *fieldErr) {
	if len(fs) == 0 {
		return nil, nil
	}
	out := make([]gwv1.HTTPRouteFilter, len(fs))
	for i, f := range fs {
		switch f.Type {
		case gwv1.GRPCRouteFilterRequestHeaderModifier, gwv1.GRPCRouteFilterResponseHeaderModifier,
			gwv1.GRPCRouteFilterRequestMirror, gwv1.GRPCRouteFilterExtensionRef:
		default:
			return nil, unsupported(fmt.Sprintf("%s.filters[%d].type", field, i),
				"filter type %q is not valid for a GRPCRoute; use RequestHeaderModifier, ResponseHeaderModifier or RequestMirror", f.Type)
		}
		out[i] = gwv1.HTTPRouteFilter{
			Type:                   gwv1.HTTPRouteFilterType(f.Type),
			RequestHeaderModifier:  f.RequestHeaderModifier,
			ResponseHeaderModifier: f.ResponseHeaderModifier,
			RequestMirror:          f.RequestMirror,
			ExtensionRef:           f.ExtensionRef,
		}
	}
	return out, nil
}

// The syntax Gateway API's CRD validation enforces on Exact matches (files
// are not validated by an API server, so it is checked here).
var (
	grpcServiceRE = regexp.MustCompile(`^(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$`)
	grpcMethodRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z_0-9]*$`)
)

// compileGRPCMatch converts one match into an IR match and its rank,
// applying the CRD default (type Exact).
func compileGRPCMatch(m *gwv1.GRPCRouteMatch, field string) (ir.Match, grpcRank, *fieldErr) {
	out := ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: "/"}}
	var rank grpcRank
	if mm := m.Method; mm != nil {
		mf := field + ".method"
		typ := gwv1.GRPCMethodMatchExact
		if mm.Type != nil {
			typ = *mm.Type
		}
		var svc, method string
		if mm.Service != nil {
			svc = *mm.Service
		}
		if mm.Method != nil {
			method = *mm.Method
		}
		if svc == "" && method == "" {
			return out, rank, unsupported(mf, "one or both of service and method must be given")
		}
		rank.service, rank.method = len(svc), len(method)
		switch typ {
		case gwv1.GRPCMethodMatchExact:
			if svc != "" && !grpcServiceRE.MatchString(svc) {
				return out, rank, unsupported(mf+".service", "service %q is not a gRPC service name such as pkg.Service", svc)
			}
			if method != "" && !grpcMethodRE.MatchString(method) {
				return out, rank, unsupported(mf+".method", "method %q is not a gRPC method name such as GetThing", method)
			}
			switch {
			case method == "":
				out.Path = ir.PathMatch{Type: ir.PathPrefix, Value: "/" + svc}
			case svc == "":
				out.Path = ir.PathMatch{Type: ir.PathRegex, Value: "/[^/]+/" + method}
			default:
				out.Path = ir.PathMatch{Type: ir.PathExact, Value: "/" + svc + "/" + method}
			}
		case gwv1.GRPCMethodMatchRegularExpression:
			rank.regex = true
			part := func(expr, name string) (string, *fieldErr) {
				if expr == "" {
					return "[^/]+", nil
				}
				if _, err := regexp.Compile(expr); err != nil {
					return "", unsupported(mf+"."+name, "invalid regular expression (RE2 syntax): %v", err)
				}
				return "(?:" + expr + ")", nil
			}
			s, err := part(svc, "service")
			if err != nil {
				return out, rank, err
			}
			me, err := part(method, "method")
			if err != nil {
				return out, rank, err
			}
			out.Path = ir.PathMatch{Type: ir.PathRegex, Value: "/" + s + "/" + me}
		default:
			return out, rank, unsupported(mf+".type", "method match type %q is not supported; use Exact or RegularExpression", typ)
		}
	}
	seen := map[string]bool{}
	for i, h := range m.Headers {
		hf := fmt.Sprintf("%s.headers[%d]", field, i)
		if !validHeaderName(string(h.Name)) {
			return out, rank, unsupported(hf+".name", "%q is not a valid header name", h.Name)
		}
		name := textproto.CanonicalMIMEHeaderKey(string(h.Name))
		if seen[name] {
			continue // Gateway API: only the first entry of a name counts
		}
		seen[name] = true
		sm, err := stringMatch(name, (*string)(h.Type), h.Value, hf)
		if err != nil {
			return out, rank, err
		}
		out.Headers = append(out.Headers, sm)
	}
	return out, rank, nil
}
