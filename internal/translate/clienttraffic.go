package translate

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/api/v1alpha1"
	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/status"
)

// ClientTrafficPolicy attachment: policies are validated and their targets
// claimed (oldest first) before Gateways are translated, so that each
// listener knows its effective settings when it claims a socket; their
// status is written once the Gateways are known.

// Gateway API policy reasons not in package status.
const (
	reasonCTPTargetNotFound = "TargetNotFound"
	reasonCTPConflicted     = "Conflicted"
)

// frontState is the frontend side of one translation: CA bundles and
// ClientTrafficPolicies.
type frontState struct {
	configMaps map[nsName]*corev1.ConfigMap
	policies   []*ctPolicy            // oldest first
	winners    map[ctTarget]*ctPolicy // the policy in force per target
}

// ctTarget is a Gateway, or one of its listeners by name.
type ctTarget struct {
	gw      nsName
	section string
}

// ctPolicy is a decoded and validated ClientTrafficPolicy.
type ctPolicy struct {
	obj     *v1alpha1.ClientTrafficPolicy
	key     nsName
	invalid *status.Condition   // the first problem; nil when valid
	targets []*status.Condition // per targetRef: set when not attached

	tls      ir.TLS               // versions, suites, ALPN, tickets
	settings *ir.ListenerSettings // nil when none is set
}

// frontend is what a listener's socket must be configured with: its
// policy and client validation. Listeners sharing a socket need equal keys.
type frontend struct {
	policy *ctPolicy
	target ctTarget // of policy
	cv     *ir.ClientValidation
	key    string
}

// indexFrontend indexes ConfigMaps and validates ClientTrafficPolicies,
// giving each target to its oldest valid policy.
func (t *translator) indexFrontend() {
	t.front = &frontState{configMaps: indexConfigMaps(t.s.ConfigMaps), winners: map[ctTarget]*ctPolicy{}}
	for _, o := range t.s.ClientTrafficPolicies {
		t.front.policies = append(t.front.policies, &ctPolicy{obj: o, key: nsName{o.Namespace, o.Name}})
	}
	ps := t.front.policies
	sort.SliceStable(ps, func(i, j int) bool {
		return precedes(ps[i].obj.CreationTimestamp, ps[j].obj.CreationTimestamp, ps[i].key, ps[j].key)
	})
	for _, p := range ps {
		p.validate()
		p.targets = make([]*status.Condition, len(p.obj.Spec.TargetRefs))
		if p.invalid != nil {
			continue
		}
		for i, ref := range p.obj.Spec.TargetRefs {
			field := fmt.Sprintf("spec.targetRefs[%d]", i)
			if ref.Group != gatewayGroup || ref.Kind != "Gateway" {
				c := cond(status.Accepted, false, status.ReasonInvalid, field,
					"target %s %s: a ClientTrafficPolicy targets Gateways (group %s)", strings.TrimPrefix(string(ref.Group)+"/"+string(ref.Kind), "/"), ref.Name, gatewayGroup)
				p.targets[i] = &c
				continue
			}
			pt := ctTarget{gw: nsName{p.key.ns, string(ref.Name)}}
			if ref.SectionName != nil {
				pt.section = string(*ref.SectionName)
			}
			switch w := t.front.winners[pt]; {
			case w == nil:
				t.front.winners[pt] = p
			case w != p:
				c := cond(status.Accepted, false, reasonCTPConflicted, field,
					"ClientTrafficPolicy %s, older, already targets %s; this policy is not applied there", w.key, targetString(pt))
				p.targets[i] = &c
			}
		}
	}
}

func targetString(pt ctTarget) string {
	if pt.section == "" {
		return "Gateway " + pt.gw.String()
	}
	return fmt.Sprintf("listener %s of Gateway %s", pt.section, pt.gw)
}

// frontListener computes the frontend of an HTTP or HTTPS listener: the
// policy in force (listener-level over Gateway-level) and, for HTTPS, its
// client certificate validation.
func (t *translator) frontListener(l *listener, reject func(reason, field, format string, args ...any)) {
	if l.protocol != ir.ProtocolHTTP && l.protocol != ir.ProtocolHTTPS {
		return
	}
	f := &frontend{}
	pt := ctTarget{gw: l.gw.key, section: l.name}
	if f.policy = t.front.winners[pt]; f.policy == nil {
		pt.section = ""
		f.policy = t.front.winners[pt]
	}
	f.target = pt
	if l.protocol == ir.ProtocolHTTPS {
		f.cv = t.loadClientValidation(l, reject)
	}
	f.key = f.profile(l.protocol == ir.ProtocolHTTPS)
	l.front = f
}

// profile is a canonical text of everything the frontend sets on a
// socket.
func (f *frontend) profile(https bool) string {
	var v struct {
		Settings *ir.ListenerSettings
		TLS      *ir.TLS
		CA       string
		Optional bool
	}
	if f.policy != nil {
		v.Settings = f.policy.settings
		if https {
			v.TLS = &f.policy.tls
		}
	}
	if f.cv != nil {
		v.CA, v.Optional = string(f.cv.CACertPEM), f.cv.Optional
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// frontendConflict is the condition of a listener that cannot share
// socket s because it would need other settings; nil if it can.
func frontendConflict(s *socket, l *listener, name string) *status.Condition {
	if l.front == nil || len(s.listeners) == 0 || s.listeners[0].front == nil {
		return nil
	}
	o := s.listeners[0]
	if o.front.key == l.front.key {
		return nil
	}
	c := cond(status.Conflicted, true, status.ReasonProtocolConflict, l.field(),
		"%s is already served for listener %s of Gateway %s with other client settings (ClientTrafficPolicy or spec.tls.frontend); listeners sharing a port share them, so this listener is not served",
		name, o.name, o.gw.key)
	return &c
}

// buildFrontend puts the frontend of each HTTP and HTTPS socket in cfg.
func (t *translator) buildFrontend(cfg *ir.Config) {
	for _, l := range cfg.Listeners {
		s := t.sockets[l.Name]
		if s == nil || len(s.listeners) == 0 || s.listeners[0].front == nil {
			continue
		}
		f := s.listeners[0].front
		if p := f.policy; p != nil {
			l.Settings = p.settings
			if st := p.settings; st != nil && st.HTTP3 && l.TLS == nil {
				// HTTP/3 needs TLS: plaintext listeners ignore it.
				cp := *st
				cp.HTTP3 = false
				l.Settings = &cp
				if cp == (ir.ListenerSettings{}) {
					l.Settings = nil
				}
			}
			if l.TLS != nil {
				l.TLS.MinVersion, l.TLS.MaxVersion = p.tls.MinVersion, p.tls.MaxVersion
				l.TLS.CipherSuites, l.TLS.ALPN, l.TLS.SessionTickets = p.tls.CipherSuites, p.tls.ALPN, p.tls.SessionTickets
			}
		}
		if l.TLS != nil {
			l.TLS.ClientValidation = f.cv
		}
	}
}

// reportPolicies writes the status of every ClientTrafficPolicy: one
// parent entry per targetRef, as Gateway API's PolicyAncestorStatus.
func (t *translator) reportPolicies() {
	for _, o := range t.s.ConfigMaps {
		t.entry("ConfigMap", o.Namespace, o.Name)
	}
	for _, p := range t.front.policies {
		e := t.entry("ClientTrafficPolicy", p.key.ns, p.key.name)
		if len(p.obj.Spec.TargetRefs) == 0 {
			e.Conditions = append(e.Conditions, cond(status.Accepted, false, status.ReasonInvalid, "spec.targetRefs",
				"targetRefs needs at least one Gateway"))
			continue
		}
		for i, ref := range p.obj.Spec.TargetRefs {
			par := status.Parent{Ref: status.Ref{Kind: string(ref.Kind), Namespace: p.key.ns, Name: string(ref.Name)}}
			if ref.SectionName != nil {
				par.SectionName = string(*ref.SectionName)
			}
			var c status.Condition
			switch {
			case p.invalid != nil:
				c = *p.invalid
			case p.targets[i] != nil:
				c = *p.targets[i]
			default:
				c = t.policyTargetCondition(p, ctTarget{gw: nsName{p.key.ns, string(ref.Name)}, section: par.SectionName}, fmt.Sprintf("spec.targetRefs[%d]", i))
			}
			par.Conditions = []status.Condition{c}
			e.Parents = append(e.Parents, par)
		}
	}
}

// policyTargetCondition is the Accepted condition of a policy towards a
// target it won.
func (t *translator) policyTargetCondition(p *ctPolicy, pt ctTarget, field string) status.Condition {
	g := t.gateways[pt.gw]
	switch {
	case g == nil:
		return cond(status.Accepted, false, reasonCTPTargetNotFound, field, "Gateway %s not found", pt.gw)
	case !g.ours:
		return cond(status.Accepted, false, reasonCTPTargetNotFound, field, "Gateway %s is not managed by %s", pt.gw, t.ctrl)
	}
	if pt.section != "" {
		var spec *gwv1.Listener
		for i := range g.obj.Spec.Listeners {
			if string(g.obj.Spec.Listeners[i].Name) == pt.section {
				spec = &g.obj.Spec.Listeners[i]
				break
			}
		}
		if spec == nil {
			return cond(status.Accepted, false, reasonCTPTargetNotFound, field+".sectionName", "Gateway %s has no listener %q", pt.gw, pt.section)
		}
		if spec.Protocol != gwv1.HTTPProtocolType && spec.Protocol != gwv1.HTTPSProtocolType {
			return cond(status.Accepted, false, status.ReasonInvalid, field+".sectionName",
				"listener %s has protocol %s; a ClientTrafficPolicy applies to HTTP and HTTPS listeners", pt.section, spec.Protocol)
		}
	}
	var names []string
	for _, l := range g.listeners {
		if l.programmed && l.front != nil && l.front.policy == p && l.front.target == pt {
			names = append(names, l.name)
		}
	}
	if len(names) == 0 {
		return cond(status.Accepted, true, status.ReasonAccepted, "",
			"attached to %s, which has no HTTP or HTTPS listener this policy is in force on (more specific policies, or listeners not valid)", targetString(pt))
	}
	return cond(status.Accepted, true, status.ReasonAccepted, "", "in force on listeners %s of Gateway %s", strings.Join(names, ", "), pt.gw)
}

// validate checks the spec and computes the IR values of a policy.
func (p *ctPolicy) validate() {
	spec := &p.obj.Spec
	fail := func(field, format string, args ...any) {
		if p.invalid == nil {
			c := cond(status.Accepted, false, status.ReasonInvalid, field, format, args...)
			p.invalid = &c
		}
	}
	if spec.TLS != nil {
		p.validateTLS(spec.TLS, fail)
	}
	st := &ir.ListenerSettings{}
	if c := spec.Connection; c != nil {
		if c.MaxConnections != nil {
			if *c.MaxConnections < 1 {
				fail("spec.connection.maxConnections", "maxConnections must be at least 1")
			}
			st.MaxConnections = int(*c.MaxConnections)
		}
		st.IdleTimeout = policyDuration(c.IdleTimeout, "spec.connection.idleTimeout", fail)
	}
	if h := spec.HTTP; h != nil {
		if h.MaxHeaderBytes != nil {
			if *h.MaxHeaderBytes < 1024 {
				fail("spec.http.maxHeaderBytes", "maxHeaderBytes must be at least 1024")
			}
			st.MaxHeaderBytes = int(*h.MaxHeaderBytes)
		}
		st.ReadHeaderTimeout = policyDuration(h.RequestHeaderTimeout, "spec.http.requestHeaderTimeout", fail)
	}
	if h := spec.HTTP2; h != nil {
		h2 := &ir.HTTP2Settings{}
		if v := h.MaxConcurrentStreams; v != nil {
			if *v < 1 {
				fail("spec.http2.maxConcurrentStreams", "maxConcurrentStreams must be at least 1")
			}
			h2.MaxConcurrentStreams = uint32(max(*v, 0))
		}
		if v := h.InitialStreamWindowSize; v != nil {
			if *v < 1 {
				fail("spec.http2.initialStreamWindowSize", "initialStreamWindowSize must be at least 1")
			}
			h2.InitialStreamWindow = *v
		}
		if v := h.InitialConnectionWindowSize; v != nil {
			if *v < 65535 {
				fail("spec.http2.initialConnectionWindowSize", "initialConnectionWindowSize must be at least 65535, the protocol's initial window")
			}
			h2.InitialConnWindow = *v
		}
		if *h2 != (ir.HTTP2Settings{}) {
			st.HTTP2 = h2
		}
	}
	if h := spec.HTTP3; h != nil && h.Enabled {
		if spec.TLS != nil && spec.TLS.MaxVersion != nil && *spec.TLS.MaxVersion == "1.2" {
			fail("spec.http3.enabled", "HTTP/3 runs over QUIC, which needs TLS 1.3; tls.maxVersion 1.2 excludes it")
		}
		st.HTTP3 = true
	}
	if spec.XFCC != nil {
		switch m := *spec.XFCC; m {
		case v1alpha1.XFCCSanitize, v1alpha1.XFCCSanitizeSet, v1alpha1.XFCCForward:
			st.XFCC = string(m)
		default:
			fail("spec.xfcc", "xfcc %q is not supported; use Sanitize, SanitizeSet or Forward", m)
		}
	}
	if *st != (ir.ListenerSettings{}) {
		p.settings = st
	}
}

// policyDuration reads a positive Gateway API duration; 0 when unset.
func policyDuration(d *gwv1.Duration, field string, fail func(field, format string, args ...any)) ir.Duration {
	if d == nil {
		return 0
	}
	v, err := parseDuration(*d, field)
	if err != nil || v <= 0 {
		fail(field, "%q is not a positive duration such as 10s, 1m30s or 500ms", *d)
		return 0
	}
	return v
}

// tlsVersions maps the accepted version names to their order.
var tlsVersions = map[string]int{"1.2": 2, "1.3": 3}

// h2Suites are the TLS 1.2 suites HTTP/2 requires one of (RFC 9113
// section 9.2.2).
var h2Suites = []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}

func (p *ctPolicy) validateTLS(s *v1alpha1.ClientTLSSettings, fail func(field, format string, args ...any)) {
	minV, maxV := 2, 3
	if s.MinVersion != nil {
		v, ok := tlsVersions[*s.MinVersion]
		if !ok {
			fail("spec.tls.minVersion", "minVersion %q is not supported; use \"1.2\" or \"1.3\"", *s.MinVersion)
		}
		minV = v
		p.tls.MinVersion = *s.MinVersion
	}
	if s.MaxVersion != nil {
		v, ok := tlsVersions[*s.MaxVersion]
		if !ok {
			fail("spec.tls.maxVersion", "maxVersion %q is not supported; use \"1.2\" or \"1.3\"", *s.MaxVersion)
		}
		maxV = v
		p.tls.MaxVersion = *s.MaxVersion
	}
	if minV > maxV && p.invalid == nil {
		fail("spec.tls.maxVersion", "maxVersion %s is below minVersion %s", *s.MaxVersion, *s.MinVersion)
	}
	for i, a := range s.ALPNProtocols {
		field := fmt.Sprintf("spec.tls.alpnProtocols[%d]", i)
		if a != "h2" && a != "http/1.1" {
			fail(field, "ALPN protocol %q is not served; use h2 and/or http/1.1", a)
		}
		if slices.Contains(s.ALPNProtocols[:i], a) {
			fail(field, "ALPN protocol %q is listed twice", a)
		}
	}
	p.tls.ALPN = s.ALPNProtocols
	if len(s.CipherSuites) > 0 {
		if minV == 3 {
			fail("spec.tls.cipherSuites", "cipherSuites apply to TLS 1.2 only, and minVersion is 1.3: remove them")
		}
		for i, name := range s.CipherSuites {
			if err := checkSuite(name); err != nil {
				fail(fmt.Sprintf("spec.tls.cipherSuites[%d]", i), "%v", err)
			}
		}
		if (len(s.ALPNProtocols) == 0 || slices.Contains(s.ALPNProtocols, "h2")) &&
			!slices.ContainsFunc(s.CipherSuites, func(n string) bool { return slices.Contains(h2Suites, n) }) {
			fail("spec.tls.cipherSuites", "HTTP/2 (ALPN h2) needs %s or %s among cipherSuites", h2Suites[0], h2Suites[1])
		}
		p.tls.CipherSuites = s.CipherSuites
	}
	p.tls.SessionTickets = s.SessionResumption
}

// checkSuite accepts the secure TLS 1.2 suites Go implements, by name.
func checkSuite(name string) error {
	for _, c := range tls.CipherSuites() {
		if c.Name == name {
			if !slices.Contains(c.SupportedVersions, tls.VersionTLS12) {
				return fmt.Errorf("%s is a TLS 1.3 suite; TLS 1.3 suites are not configurable", name)
			}
			return nil
		}
	}
	for _, c := range tls.InsecureCipherSuites() {
		if c.Name == name {
			return fmt.Errorf("%s is insecure and not offered", name)
		}
	}
	return fmt.Errorf("unknown cipher suite %q (Go's names, e.g. %s)", name, h2Suites[0])
}
