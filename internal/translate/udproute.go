package translate

import (
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// newUDPRoute prepares a UDPRoute: datagrams of each client form a session
// sent to one backend, chosen by weight when the session begins.
func (t *translator) newUDPRoute(r *gwv1.UDPRoute) *l4Route {
	lr := &l4Route{kind: "UDPRoute", key: nsName{r.Namespace, r.Name}, created: r.CreationTimestamp, parents: r.Spec.ParentRefs}
	for _, rule := range r.Spec.Rules {
		lr.rules = append(lr.rules, rule.BackendRefs)
	}
	return lr
}
