package translate

import (
	"fmt"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// newTLSRoute prepares a TLSRoute: its hostnames are SNI patterns,
// intersected with the hostname of each listener it attaches to (attachL4),
// exactly as HTTPRoute hostnames are. Connections are routed by their
// ClientHello's SNI; each placed rule carries its listener's mode (Terminate:
// handshake at the gateway, plaintext forwarded; Passthrough: forwarded
// encrypted), and listeners of both modes may share a port
// (TLSRouteModeMixed).
func (t *translator) newTLSRoute(r *gwv1.TLSRoute) *l4Route {
	lr := &l4Route{kind: "TLSRoute", key: nsName{r.Namespace, r.Name}, created: r.CreationTimestamp, parents: r.Spec.ParentRefs}
	for i, h := range r.Spec.Hostnames {
		if err := validHostname(string(h), true); err != nil {
			lr.hostProblem = unsupported(fmt.Sprintf("spec.hostnames[%d]", i), "%v", err)
			break
		}
		lr.hosts = append(lr.hosts, string(h))
	}
	for _, rule := range r.Spec.Rules {
		lr.rules = append(lr.rules, rule.BackendRefs)
	}
	return lr
}
