package translate

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/status"
)

// BackendTLSPolicy (gateway.networking.k8s.io/v1) and a Gateway's
// spec.tls.backend.clientCertificateRef: TLS from the proxy to backends.
//
// A policy targets Services, a whole Service or one port by name
// (sectionName); the port-specific policy wins over the whole-Service one.
// It applies to the cluster of each Service port it covers, whichever route
// uses it: a Service port is never reached both with and without TLS. The
// policy's hostname is the SNI and, unless subjectAltNames are given, the
// name verified. The oldest policy (then first by namespace/name) wins a
// target; the others are Conflicted there.
//
// A Gateway's client certificate goes to the backends its routes reach
// with TLS: their clusters are copied per Gateway ("CLUSTER/client/NS/GW")
// with the certificate, and the routes pointed at the copies.
//
// Status approximates Gateway API's PolicyAncestorStatus: the policy's own
// conditions summarise, and Parents holds one entry per Gateway through
// which the policy is in force (ancestor), plus one per targetRef that
// failed to attach.

const (
	kindBTLS                        = "BackendTLSPolicy"
	reasonInvalidClientCertRef      = string(gwv1.GatewayReasonInvalidClientCertificateRef)
	wellKnownSystem                 = string(gwv1.WellKnownCACertificatesSystem)
	clientCertSuffix                = "/client/"
	reasonBTLSNoValidCACertificate  = string(gwv1.BackendTLSPolicyReasonNoValidCACertificate)
	reasonBTLSInvalidCACertRef      = string(gwv1.BackendTLSPolicyReasonInvalidCACertificateRef)
	reasonBTLSInvalidCACertKindName = string(gwv1.BackendTLSPolicyReasonInvalidKind)
)

// btlsTarget is a Service, or one of its ports by name.
type btlsTarget struct{ ns, svc, section string }

// btlsPolicy is one validated BackendTLSPolicy.
type btlsPolicy struct {
	obj *gwv1.BackendTLSPolicy
	key nsName
	res *status.Resource
	tls *ir.UpstreamTLS // nil when the policy is not accepted at all
	// accepted is the Accepted condition; refs the ResolvedRefs one.
	accepted, refs status.Condition
	// failed are the targetRefs that did not attach, as parent entries.
	failed []status.Parent
	// conflicts are targets another policy won: reported on the Gateways
	// through which the winner is in force (GEP-713 conflict resolution).
	conflicts []btlsConflict
	// ancestors are the Gateways ("ns/name") whose routes reach a cluster
	// the policy applies to; filled by applyBackendTLS.
	ancestors map[string]bool
}

// btlsConflict is a targetRef of a policy that lost it to winner.
type btlsConflict struct {
	par    status.Parent
	winner *btlsPolicy
}

// btlsState is the translation's view of BackendTLSPolicies.
type btlsState struct {
	winners  map[btlsTarget]*btlsPolicy
	byOrigin map[string]*btlsPolicy
	all      []*btlsPolicy
}

// indexBackendTLS validates every BackendTLSPolicy and settles which one
// holds each target. It runs before routes create clusters (serviceCluster
// asks backendTLS) and after indexFrontend (ConfigMaps).
func (t *translator) indexBackendTLS() {
	st := &btlsState{winners: map[btlsTarget]*btlsPolicy{}, byOrigin: map[string]*btlsPolicy{}}
	t.btls = st
	pols := slices.Clone(t.s.BackendTLSPolicies)
	sort.SliceStable(pols, func(i, j int) bool {
		return precedes(pols[i].CreationTimestamp, pols[j].CreationTimestamp, nsName{pols[i].Namespace, pols[i].Name}, nsName{pols[j].Namespace, pols[j].Name})
	})
	for _, o := range pols {
		p := &btlsPolicy{obj: o, key: nsName{o.Namespace, o.Name}, ancestors: map[string]bool{}}
		p.res = t.entry(kindBTLS, o.Namespace, o.Name)
		st.all = append(st.all, p)
		t.compileBackendTLS(p)
		if p.tls == nil {
			continue
		}
		st.byOrigin[p.tls.Origin] = p
		if len(o.Spec.TargetRefs) == 0 {
			p.tls = nil
			p.accepted = cond(status.Accepted, false, status.ReasonInvalid, "spec.targetRefs", "targetRefs needs at least one Service")
			continue
		}
		for i, ref := range o.Spec.TargetRefs {
			field := fmt.Sprintf("spec.targetRefs[%d]", i)
			pt := btlsTarget{ns: o.Namespace, svc: string(ref.Name)}
			if ref.SectionName != nil {
				pt.section = string(*ref.SectionName)
			}
			par := status.Parent{Ref: status.Ref{Kind: string(ref.Kind), Namespace: o.Namespace, Name: string(ref.Name)}, SectionName: pt.section}
			fail := func(reason, f, format string, args ...any) {
				par.Conditions = []status.Condition{cond(status.Accepted, false, reason, f, format, args...)}
				p.failed = append(p.failed, par)
			}
			if ref.Group != "" || ref.Kind != "Service" {
				fail(status.ReasonInvalid, field, "target %s %s is not supported; a BackendTLSPolicy targets core Services",
					strings.TrimPrefix(string(ref.Group)+"/"+string(ref.Kind), "/"), ref.Name)
				continue
			}
			svc := t.services[nsName{pt.ns, pt.svc}]
			if svc == nil {
				fail(reasonTargetNotFound, field, "Service %s/%s not found", pt.ns, pt.svc)
				continue
			}
			if pt.section != "" && !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == pt.section }) {
				fail(reasonTargetNotFound, field+".sectionName", "Service %s/%s has no port named %q", pt.ns, pt.svc, pt.section)
				continue
			}
			if prev := st.winners[pt]; prev != nil {
				par.Conditions = []status.Condition{cond(status.Accepted, false, reasonConflicted, field,
					"%s %s, older (or first by name), already targets this Service port; this target is ignored", kindBTLS, prev.key)}
				p.conflicts = append(p.conflicts, btlsConflict{par: par, winner: prev})
				continue
			}
			st.winners[pt] = p
		}
	}
}

// compileBackendTLS checks the spec and resolves the CA references into
// p.tls, setting p.accepted and p.refs.
func (t *translator) compileBackendTLS(p *btlsPolicy) {
	v := p.obj.Spec.Validation
	p.refs = cond(status.ResolvedRefs, true, status.ReasonResolvedRefs, "", "all references are resolved")
	invalid := func(field, format string, args ...any) {
		p.accepted = cond(status.Accepted, false, status.ReasonInvalid, field, format, args...)
	}
	if err := validHostname(string(v.Hostname), false); err != nil {
		invalid("spec.validation.hostname", "%v", err)
		return
	}
	out := &ir.UpstreamTLS{SNI: string(v.Hostname), Origin: kindBTLS + "/" + p.key.String()}
	for i, san := range v.SubjectAltNames {
		field := fmt.Sprintf("spec.validation.subjectAltNames[%d]", i)
		switch san.Type {
		case gwv1.HostnameSubjectAltNameType:
			if err := validHostname(string(san.Hostname), true); err != nil || san.URI != "" {
				invalid(field, "type Hostname needs a valid hostname and no uri")
				return
			}
			out.SubjectAltNames = append(out.SubjectAltNames, string(san.Hostname))
		case gwv1.URISubjectAltNameType:
			if !isURISAN(string(san.URI)) || san.Hostname != "" {
				invalid(field, "type URI needs an absolute uri (scheme://…) and no hostname")
				return
			}
			out.SubjectAltNames = append(out.SubjectAltNames, string(san.URI))
		default:
			invalid(field+".type", "type %q is not supported; use Hostname or URI", san.Type)
			return
		}
	}
	wk := ""
	if v.WellKnownCACertificates != nil {
		wk = string(*v.WellKnownCACertificates)
	}
	switch {
	case len(v.CACertificateRefs) > 0 && wk != "":
		invalid("spec.validation", "caCertificateRefs and wellKnownCACertificates are exclusive; set one")
		return
	case len(v.CACertificateRefs) == 0 && wk == "":
		invalid("spec.validation", "set caCertificateRefs or wellKnownCACertificates: System")
		return
	case wk != "" && wk != wellKnownSystem:
		invalid("spec.validation.wellKnownCACertificates", "wellKnownCACertificates %q is not supported; use System", wk)
		return
	case wk == wellKnownSystem:
		out.SystemCAs = true
	}
	var problems []string
	var bundle bytes.Buffer
	valid := 0
	for i, ref := range v.CACertificateRefs {
		field := fmt.Sprintf("spec.validation.caCertificateRefs[%d]", i)
		kind, key := string(ref.Kind), nsName{p.key.ns, string(ref.Name)}
		fail := func(reason, format string, args ...any) {
			c := cond(status.ResolvedRefs, false, reason, field, format, args...)
			if len(problems) == 0 {
				p.refs = c
			}
			problems = append(problems, field+": "+c.Message)
		}
		if ref.Group != "" || kind != "ConfigMap" && kind != "Secret" {
			fail(reasonBTLSInvalidCACertKindName, "%s %s: only core ConfigMaps and Secrets hold CA certificates",
				strings.TrimPrefix(string(ref.Group)+"/"+kind, "/"), key)
			continue
		}
		data, found := t.caData(kind, key)
		switch {
		case !found:
			fail(reasonBTLSInvalidCACertRef, "%s %s not found", kind, key)
			continue
		case data == nil:
			fail(reasonBTLSInvalidCACertRef, "%s %s has no key %s", kind, key, caCertKey)
			continue
		}
		n, err := appendCerts(&bundle, data)
		if err != nil || n == 0 {
			if err == nil {
				err = fmt.Errorf("no PEM certificate in %s", caCertKey)
			}
			fail(reasonBTLSInvalidCACertRef, "%s %s: %v", kind, key, err)
			continue
		}
		valid++
	}
	if len(problems) > 1 {
		p.refs.Message = strings.Join(problems, "; ")
	}
	out.CACertPEM = bundle.Bytes()
	p.tls = out
	if len(v.CACertificateRefs) > 0 && valid == 0 {
		// Still applied: connections to the targets must fail (5xx), not
		// fall back to plaintext. An empty pool trusts nothing.
		p.accepted = cond(status.Accepted, false, reasonBTLSNoValidCACertificate, "spec.validation.caCertificateRefs",
			"none of the CA certificates is usable; connections to the targeted backends fail")
		return
	}
	p.accepted = cond(status.Accepted, true, status.ReasonAccepted, "", "the policy is valid")
}

func isURISAN(s string) bool {
	scheme, rest, ok := strings.Cut(s, "://")
	return ok && scheme != "" && rest != "" && !strings.ContainsAny(s, " \t")
}

// backendTLS is the upstream TLS of one Service port: the policy naming
// the port wins over one naming the whole Service; nil when none.
func (t *translator) backendTLS(svc *corev1.Service, sp *corev1.ServicePort) *ir.UpstreamTLS {
	if t.btls == nil {
		return nil
	}
	if sp.Name != "" {
		if p := t.btls.winners[btlsTarget{svc.Namespace, svc.Name, sp.Name}]; p != nil {
			return p.tls
		}
	}
	if p := t.btls.winners[btlsTarget{svc.Namespace, svc.Name, ""}]; p != nil {
		return p.tls
	}
	return nil
}

// applyBackendTLS records which Gateways reach each policy, resolves the
// Gateways' client certificates and gives their routes cluster copies
// carrying them. It runs once the routes are final (after buildL4).
func (t *translator) applyBackendTLS(cfg *ir.Config) {
	certs := map[string]*ir.Certificate{} // by Gateway "ns/name"
	for _, g := range t.gwOrder {
		if c := t.gatewayClientCert(g); c != nil {
			certs[g.key.String()] = c
		}
	}
	clusterOf := func(name string) *ir.Cluster { return t.clusters[name] }
	note := func(gw, cluster string) {
		if c := clusterOf(cluster); c != nil && c.TLS != nil {
			if p := t.btls.byOrigin[c.TLS.Origin]; p != nil && gw != "" {
				p.ancestors[gw] = true
			}
		}
	}
	var copies []*ir.Cluster
	withCert := func(name, gw string) string {
		c, cert := clusterOf(name), certs[gw]
		if c == nil || c.TLS == nil || cert == nil {
			return name
		}
		cp := name + clientCertSuffix + gw
		if t.clusters[cp] == nil {
			cc, tc := *c, *c.TLS
			tc.ClientCertPEM, tc.ClientKeyPEM = cert.CertPEM, cert.KeyPEM
			tc.Origin += "," + cert.Origin
			cc.Name, cc.TLS = cp, &tc
			t.clusters[cp] = &cc
			copies = append(copies, &cc)
		}
		return cp
	}
	withoutTLS := func(name string) string {
		c := clusterOf(name)
		if c == nil || c.TLS == nil {
			return name
		}
		cp := name + "/plaintext"
		if t.clusters[cp] == nil {
			cc := *c
			cc.Name, cc.TLS = cp, nil
			t.clusters[cp] = &cc
			copies = append(copies, &cc)
		}
		return cp
	}
	type routeKey struct {
		r  *ir.Route
		gw string
	}
	done := map[routeKey]*ir.Route{}
	for _, l := range cfg.Listeners {
		for _, vh := range l.VirtualHosts {
			for i, r := range vh.Routes {
				for _, b := range r.Backends {
					note(vh.Gateway, b.Cluster)
				}
				for _, m := range r.Mirrors {
					note(vh.Gateway, m.Cluster)
				}
				if certs[vh.Gateway] == nil {
					continue
				}
				k := routeKey{r, vh.Gateway}
				if d := done[k]; d != nil {
					vh.Routes[i] = d
					continue
				}
				vh.Routes[i] = routeWithCert(r, func(c string) string { return withCert(c, vh.Gateway) })
				done[k] = vh.Routes[i]
			}
		}
		// Only a TLS route that terminates re-encrypts towards its
		// backends; TCP and passthrough routes carry bytes as they are,
		// so their clusters drop the policy's TLS.
		for _, r := range l.L4Routes {
			terminate := l.Protocol == ir.ProtocolTLS && r.Terminate
			for _, b := range r.Backends {
				if !terminate {
					b.Cluster = withoutTLS(b.Cluster)
					continue
				}
				for _, gw := range l.Gateways {
					note(gw, b.Cluster)
				}
				if len(l.Gateways) == 1 && certs[l.Gateways[0]] != nil {
					b.Cluster = withCert(b.Cluster, l.Gateways[0])
				}
			}
		}
	}
	if len(copies) == 0 {
		return
	}
	used := map[string]bool{}
	for _, l := range cfg.Listeners {
		for _, vh := range l.VirtualHosts {
			for _, r := range vh.Routes {
				for _, b := range r.Backends {
					used[b.Cluster] = true
				}
				for _, m := range r.Mirrors {
					used[m.Cluster] = true
				}
			}
		}
		for _, r := range l.L4Routes {
			for _, b := range r.Backends {
				used[b.Cluster] = true
			}
		}
	}
	kept := cfg.Clusters[:0]
	for _, c := range cfg.Clusters {
		if used[c.Name] {
			kept = append(kept, c)
		}
	}
	cfg.Clusters = append(kept, copies...)
	sort.Slice(cfg.Clusters, func(i, j int) bool { return cfg.Clusters[i].Name < cfg.Clusters[j].Name })
}

// routeWithCert returns r unchanged when rename changes none of its
// clusters, else a copy with renamed backends and mirrors.
func routeWithCert(r *ir.Route, rename func(string) string) *ir.Route {
	changed := false
	for _, b := range r.Backends {
		changed = changed || rename(b.Cluster) != b.Cluster
	}
	for _, m := range r.Mirrors {
		changed = changed || rename(m.Cluster) != m.Cluster
	}
	if !changed {
		return r
	}
	out := *r
	out.Backends = make([]*ir.Backend, len(r.Backends))
	for i, b := range r.Backends {
		nb := *b
		nb.Cluster = rename(b.Cluster)
		out.Backends[i] = &nb
	}
	out.Mirrors = make([]*ir.Mirror, len(r.Mirrors))
	for i, m := range r.Mirrors {
		nm := *m
		nm.Cluster = rename(m.Cluster)
		out.Mirrors[i] = &nm
	}
	if len(r.Mirrors) == 0 {
		out.Mirrors = nil
	}
	return &out
}

// gatewayClientCert resolves spec.tls.backend.clientCertificateRef of an
// accepted Gateway, setting its ResolvedRefs condition when the reference
// is not usable; nil when there is none or it is not usable.
func (t *translator) gatewayClientCert(g *gateway) *ir.Certificate {
	if !g.accepted || g.obj.Spec.TLS == nil || g.obj.Spec.TLS.Backend == nil || g.obj.Spec.TLS.Backend.ClientCertificateRef == nil {
		return nil
	}
	ref := g.obj.Spec.TLS.Backend.ClientCertificateRef
	const field = "spec.tls.backend.clientCertificateRef"
	fail := func(reason, format string, args ...any) *ir.Certificate {
		g.res.Conditions = status.Set(g.res.Conditions, cond(status.ResolvedRefs, false, reason, field, format, args...))
		return nil
	}
	group, kind, ns := "", "Secret", g.key.ns
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
	if group != "" || kind != "Secret" {
		return fail(reasonInvalidClientCertRef, "client certificate reference to %s %s: only core Secrets are supported", strings.TrimPrefix(group+"/"+kind, "/"), key)
	}
	if !t.permitted(refFrom{gatewayGroup, "Gateway", g.key.ns}, refTo{"", "Secret", ns, key.name}) {
		return fail(status.ReasonRefNotPermitted, "Secret %s is in another namespace and no ReferenceGrant there allows Gateways of namespace %s to use it", key, g.key.ns)
	}
	sec := t.secrets[key]
	if sec == nil {
		return fail(reasonInvalidClientCertRef, "Secret %s not found", key)
	}
	crt, keyPEM, err := tlsSecret(sec)
	if err != nil {
		return fail(reasonInvalidClientCertRef, "Secret %s: %v", key, err)
	}
	g.res.Conditions = status.Set(g.res.Conditions, cond(status.ResolvedRefs, true, status.ReasonResolvedRefs, "",
		"the backend client certificate Secret %s is resolved", key))
	return &ir.Certificate{CertPEM: crt, KeyPEM: keyPEM, Origin: "Secret/" + key.String()}
}

// reportBackendTLS writes the status of every BackendTLSPolicy.
func (t *translator) reportBackendTLS() {
	for _, p := range t.btls.all {
		p.res.Conditions = append(p.res.Conditions, p.accepted)
		if p.tls == nil {
			continue
		}
		p.res.Conditions = append(p.res.Conditions, p.refs)
		gws := make([]string, 0, len(p.ancestors))
		for gw := range p.ancestors {
			gws = append(gws, gw)
		}
		sort.Strings(gws)
		for _, gw := range gws {
			ns, name, _ := strings.Cut(gw, "/")
			a := cond(status.Accepted, true, status.ReasonAccepted, "", "in force on the backends this Gateway's routes reach")
			if !p.accepted.Status {
				a = p.accepted
			}
			p.res.Parents = append(p.res.Parents, status.Parent{
				Ref:        status.Ref{Kind: "Gateway", Namespace: ns, Name: name},
				Conditions: []status.Condition{a, p.refs},
			})
		}
		p.res.Parents = append(p.res.Parents, p.failed...)
		for _, c := range p.conflicts {
			if len(c.winner.ancestors) == 0 {
				p.res.Parents = append(p.res.Parents, c.par)
				continue
			}
			for _, gw := range slices.Sorted(maps.Keys(c.winner.ancestors)) {
				ns, name, _ := strings.Cut(gw, "/")
				p.res.Parents = append(p.res.Parents, status.Parent{
					Ref:        status.Ref{Kind: "Gateway", Namespace: ns, Name: name},
					Conditions: c.par.Conditions,
				})
			}
		}
	}
}
