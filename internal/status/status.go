// Package status holds the conditions the translator computes for every
// resource: Gateway API's Accepted, ResolvedRefs, Programmed and their
// reasons, each with a message a person can act on and the place (file,
// document, field) it concerns.
//
// A Report is produced by the translator (a pure function) and shown by
// `causeway validate`, the admin API and, in Kubernetes mode, written to the
// objects. This package imports only the standard library.
package status

import (
	"fmt"
	"sort"
	"strings"
)

// Condition types and reasons, as Gateway API spells them.
const (
	Accepted     = "Accepted"
	ResolvedRefs = "ResolvedRefs"
	Programmed   = "Programmed"
	Conflicted   = "Conflicted"

	ReasonAccepted                   = "Accepted"
	ReasonResolvedRefs               = "ResolvedRefs"
	ReasonProgrammed                 = "Programmed"
	ReasonInvalid                    = "Invalid"
	ReasonInvalidParameters          = "InvalidParameters"
	ReasonNotAllowedByListeners      = "NotAllowedByListeners"
	ReasonNoMatchingListenerHostname = "NoMatchingListenerHostname"
	ReasonNoMatchingParent           = "NoMatchingParent"
	ReasonRefNotPermitted            = "RefNotPermitted"
	ReasonBackendNotFound            = "BackendNotFound"
	ReasonInvalidKind                = "InvalidKind"
	ReasonInvalidRouteKinds          = "InvalidRouteKinds"
	ReasonInvalidCertificateRef      = "InvalidCertificateRef"
	ReasonUnsupportedValue           = "UnsupportedValue"
	ReasonUnsupportedProtocol        = "UnsupportedProtocol"
	ReasonUnsupportedAddress         = "UnsupportedAddress"
	ReasonAddressNotUsable           = "AddressNotUsable"
	ReasonPortUnavailable            = "PortUnavailable"
	ReasonHostnameConflict           = "HostnameConflict"
	ReasonProtocolConflict           = "ProtocolConflict"
	ReasonNoConflicts                = "NoConflicts"
	ReasonListenersNotValid          = "ListenersNotValid"
	ReasonPending                    = "Pending"
	ReasonNotReconciled              = "NotReconciled"   // GatewayClass of another controller
	ReasonInvalidResource            = "InvalidResource" // decode errors, unknown kinds
)

// Condition is one Gateway API condition.
type Condition struct {
	Type    string `json:"type"`
	Status  bool   `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
	// Field is the path within the resource the condition concerns, e.g.
	// "spec.rules[0].backendRefs[1]"; "" for the whole resource.
	Field string `json:"field,omitempty"`
}

// Ref names a resource.
type Ref struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func (r Ref) String() string {
	if r.Namespace == "" {
		return r.Kind + "/" + r.Name
	}
	return r.Kind + "/" + r.Namespace + "/" + r.Name
}

// Source is where a resource was read from.
type Source struct {
	File string `json:"file,omitempty"`
	// Doc is the 1-based index of the YAML document within File.
	Doc int `json:"doc,omitempty"`
}

func (s Source) String() string {
	if s.File == "" {
		return ""
	}
	return fmt.Sprintf("%s#%d", s.File, s.Doc)
}

// Resource is the status of one resource.
type Resource struct {
	Ref        Ref         `json:"ref"`
	Source     Source      `json:"source"`
	Conditions []Condition `json:"conditions,omitempty"`
	// Listeners: for Gateways, one entry per spec.listeners item.
	Listeners []Listener `json:"listeners,omitempty"`
	// Parents: for routes, one entry per parentRef.
	Parents []Parent `json:"parents,omitempty"`
}

// Listener is the status of one Gateway listener.
type Listener struct {
	Name           string      `json:"name"`
	AttachedRoutes int32       `json:"attachedRoutes"`
	SupportedKinds []string    `json:"supportedKinds,omitempty"`
	Conditions     []Condition `json:"conditions"`
}

// Parent is a route's status towards one parentRef.
type Parent struct {
	// ParentRef as written: "Gateway/ns/name", plus section and port.
	Ref         Ref         `json:"ref"`
	SectionName string      `json:"sectionName,omitempty"`
	Port        int32       `json:"port,omitempty"`
	Conditions  []Condition `json:"conditions"`
}

// Report is the status of every resource of a snapshot.
type Report struct {
	Resources []*Resource `json:"resources"`
	index     map[Ref]*Resource
}

// For returns the entry of ref, creating it.
func (r *Report) For(ref Ref, src Source) *Resource {
	if r.index == nil {
		r.index = make(map[Ref]*Resource)
	}
	if e, ok := r.index[ref]; ok {
		return e
	}
	e := &Resource{Ref: ref, Source: src}
	r.index[ref] = e
	r.Resources = append(r.Resources, e)
	return e
}

// Sort orders resources by kind, namespace and name.
func (r *Report) Sort() {
	sort.Slice(r.Resources, func(i, j int) bool {
		a, b := r.Resources[i].Ref, r.Resources[j].Ref
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
}

// Set replaces the condition of the same type in conds, or appends it.
func Set(conds []Condition, c Condition) []Condition {
	for i := range conds {
		if conds[i].Type == c.Type {
			conds[i] = c
			return conds
		}
	}
	return append(conds, c)
}

// Problem is one false condition, located.
type Problem struct {
	Ref       Ref
	Source    Source
	Parent    string // listener name or parentRef, when it concerns one
	Condition Condition
}

// Error renders a problem as one line naming file, document, resource and
// field: "routes.yaml#2 HTTPRoute/default/app spec.rules[0].backendRefs[0]:
// ResolvedRefs=False BackendNotFound: Service default/nope not found".
func (p Problem) Error() string {
	var b strings.Builder
	if s := p.Source.String(); s != "" {
		b.WriteString(s)
		b.WriteByte(' ')
	}
	b.WriteString(p.Ref.String())
	if p.Parent != "" {
		b.WriteString(" (" + p.Parent + ")")
	}
	// Messages that join several fields already name each one.
	if p.Condition.Field != "" && !strings.Contains(p.Condition.Message, p.Condition.Field) {
		b.WriteString(" " + p.Condition.Field)
	}
	fmt.Fprintf(&b, ": %s=False %s: %s", p.Condition.Type, p.Condition.Reason, p.Condition.Message)
	return b.String()
}

// Problems lists every condition that is False (for Conflicted: True), in
// report order. A Report without problems is fully valid.
func (r *Report) Problems() []Problem {
	var out []Problem
	bad := func(c Condition) bool {
		if c.Type == Conflicted {
			return c.Status
		}
		return !c.Status
	}
	for _, e := range r.Resources {
		for _, c := range e.Conditions {
			if bad(c) {
				out = append(out, Problem{Ref: e.Ref, Source: e.Source, Condition: c})
			}
		}
		for _, l := range e.Listeners {
			for _, c := range l.Conditions {
				if bad(c) {
					out = append(out, Problem{Ref: e.Ref, Source: e.Source, Parent: "listener " + l.Name, Condition: c})
				}
			}
		}
		for _, p := range e.Parents {
			for _, c := range p.Conditions {
				if bad(c) {
					out = append(out, Problem{Ref: e.Ref, Source: e.Source, Parent: "parent " + p.Ref.String(), Condition: c})
				}
			}
		}
	}
	return out
}
