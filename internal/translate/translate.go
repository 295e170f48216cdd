// Package translate turns a resource.Snapshot into the data-plane IR and the
// status of every resource.
//
// It sits between the provider and the proxy: a provider (files, Kubernetes)
// produces an immutable Snapshot, Translate computes the ir.Config that the
// proxy compiles and the status.Report that `causeway validate`, the admin
// API and the Kubernetes status writer show. Translate is a pure function:
// no I/O, no globals, no clock, and the same snapshot always gives
// byte-identical output.
//
// The package is split by kind: gateway.go (GatewayClass, Gateway and its
// listeners), listenerset.go (ListenerSets, merged into their Gateway),
// httproute.go and filter.go (HTTPRoute attachment, matches and filters),
// backend.go (Service, EndpointSlice and Backend resolution), backendtls.go
// (BackendTLSPolicy and Gateway client certificates), refgrant.go,
// hostname.go and precedence.go (Gateway API ordering).
package translate

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/api/v1alpha1"
	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
)

// ControllerName is the spec.controllerName of the GatewayClasses Causeway
// manages.
const ControllerName = "causeway.dev/gateway-controller"

// Options tunes a translation. The zero value is ready to use.
type Options struct {
	// ControllerName selects the GatewayClasses to manage; "" means
	// ControllerName.
	ControllerName string
	// Addresses gives the IPs to bind for a Gateway without spec.addresses
	// (in-process Kubernetes mode allocates one per Gateway from a pool);
	// nil, or an empty result, means all interfaces. It must be
	// deterministic for Translate to stay so.
	Addresses func(gw *gwv1.Gateway) []string
}

const (
	gatewayGroup = gwv1.GroupName // "gateway.networking.k8s.io"

	// condIgnored marks resources of another controller: informational,
	// never a problem (its Status is true).
	condIgnored = "Ignored"
	// condPartiallyInvalid is Gateway API's route condition for a route
	// some of whose rules were dropped.
	condPartiallyInvalid = "PartiallyInvalid"
	// reasonIncompatibleFilters is Gateway API's route reason for filters
	// that cannot be combined (RequestRedirect with URLRewrite).
	reasonIncompatibleFilters = "IncompatibleFilters"
)

// nsName is a namespaced object key.
type nsName struct{ ns, name string }

func (k nsName) String() string { return k.ns + "/" + k.name }

// translator holds the indexes and the output of one translation.
type translator struct {
	ctrl  string
	addrs func(*gwv1.Gateway) []string
	s     *resource.Snapshot
	rep   *status.Report

	namespaces map[string]map[string]string // name → labels
	services   map[nsName]*corev1.Service
	slices     map[nsName][]*discoveryv1.EndpointSlice // by Service
	secrets    map[nsName]*corev1.Secret
	backends   map[nsName]*backendInfo
	grants     map[string][]*gwv1.ReferenceGrant // by namespace

	classes  map[string]*classInfo
	gateways map[nsName]*gateway
	gwOrder  []*gateway
	lsets    map[nsName]*listenerSet // listenerset.go

	sockets  map[string]*socket // by ir.Listener.Name
	clusters map[string]*ir.Cluster

	front *frontState // ConfigMaps and ClientTrafficPolicies (clienttraffic.go)
	// policies are the BackendTrafficPolicy winners (backendtraffic.go).
	policies map[policyTarget]attachedPolicy
	// btls holds the BackendTLSPolicies (backendtls.go).
	btls *btlsState
}

// Translate computes the IR and the status of every resource of s.
//
// Every resource of s, and every problem in s.Problems, gets an entry in
// the report, located by s.Sources. Only GatewayClasses whose
// controllerName is opts.ControllerName, their Gateways and the routes
// attached to those are translated; others get an informational "Ignored"
// condition. The result is deterministic and cfg.Finalize has been called.
func Translate(s *resource.Snapshot, opts Options) (*ir.Config, *status.Report) {
	t := &translator{
		ctrl:       opts.ControllerName,
		addrs:      opts.Addresses,
		s:          s,
		rep:        &status.Report{},
		namespaces: make(map[string]map[string]string),
		services:   make(map[nsName]*corev1.Service),
		slices:     make(map[nsName][]*discoveryv1.EndpointSlice),
		secrets:    make(map[nsName]*corev1.Secret),
		backends:   make(map[nsName]*backendInfo),
		grants:     make(map[string][]*gwv1.ReferenceGrant),
		classes:    make(map[string]*classInfo),
		gateways:   make(map[nsName]*gateway),
		sockets:    make(map[string]*socket),
		clusters:   make(map[string]*ir.Cluster),
	}
	if t.ctrl == "" {
		t.ctrl = ControllerName
	}
	t.index()
	t.translateBackends()
	t.indexPolicies()
	t.translateClasses()
	t.indexFrontend()
	t.indexBackendTLS()
	t.translateGateways()
	t.translateListenerSets()
	t.translateRoutes()
	t.translateL4Routes()
	cfg := t.build()
	t.resolvePolicies(cfg)
	t.buildL4(cfg)
	t.applyBackendTLS(cfg)
	t.buildFrontend(cfg)
	t.reportPolicies()
	t.reportBackendTLS()
	t.reportPassive()
	t.reportProblems()
	sortReport(t.rep)
	cfg.Finalize()
	return cfg, t.rep
}

// index builds the lookup maps of the passive kinds.
func (t *translator) index() {
	for _, n := range t.s.Namespaces {
		t.namespaces[n.Name] = n.Labels
	}
	for _, svc := range t.s.Services {
		t.services[nsName{svc.Namespace, svc.Name}] = svc
	}
	for _, es := range t.s.EndpointSlices {
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		k := nsName{es.Namespace, svc}
		t.slices[k] = append(t.slices[k], es)
	}
	for _, sec := range t.s.Secrets {
		t.secrets[nsName{sec.Namespace, sec.Name}] = sec
	}
	for _, g := range t.s.ReferenceGrants {
		t.grants[g.Namespace] = append(t.grants[g.Namespace], g)
	}
}

// entry returns the report entry of a resource.
func (t *translator) entry(kind, ns, name string) *status.Resource {
	ref := status.Ref{Kind: kind, Namespace: ns, Name: name}
	return t.rep.For(ref, t.s.Source(ref))
}

// reportPassive gives every remaining resource of the snapshot an entry,
// without conditions: they are only referenced.
func (t *translator) reportPassive() {
	for _, o := range t.s.Namespaces {
		t.entry("Namespace", "", o.Name)
	}
	for _, o := range t.s.Services {
		t.entry("Service", o.Namespace, o.Name)
	}
	for _, o := range t.s.EndpointSlices {
		t.entry("EndpointSlice", o.Namespace, o.Name)
	}
	for _, o := range t.s.Secrets {
		t.entry("Secret", o.Namespace, o.Name)
	}
	for _, o := range t.s.ReferenceGrants {
		t.entry("ReferenceGrant", o.Namespace, o.Name)
	}
}

// reportProblems adds the documents the decoder could not take. They are
// separate entries (not merged with a valid resource of the same name,
// which a duplicate has), so they bypass Report.For.
func (t *translator) reportProblems() {
	for _, p := range t.s.Problems {
		t.rep.Resources = append(t.rep.Resources, &status.Resource{
			Ref:    p.Ref,
			Source: p.Source,
			Conditions: []status.Condition{{
				Type:    status.Accepted,
				Status:  false,
				Reason:  status.ReasonInvalidResource,
				Message: p.Message,
			}},
		})
	}
}

// sortReport orders entries by kind, namespace, name, then source, which is
// total even when a problem shares the ref of a valid resource.
func sortReport(r *status.Report) {
	sort.SliceStable(r.Resources, func(i, j int) bool {
		a, b := r.Resources[i], r.Resources[j]
		if c := strings.Compare(a.Ref.Kind, b.Ref.Kind); c != 0 {
			return c < 0
		}
		if c := strings.Compare(a.Ref.Namespace, b.Ref.Namespace); c != 0 {
			return c < 0
		}
		if c := strings.Compare(a.Ref.Name, b.Ref.Name); c != 0 {
			return c < 0
		}
		if c := strings.Compare(a.Source.File, b.Source.File); c != 0 {
			return c < 0
		}
		return a.Source.Doc < b.Source.Doc
	})
}

// cond builds a condition.
func cond(typ string, ok bool, reason, field, format string, args ...any) status.Condition {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	return status.Condition{Type: typ, Status: ok, Reason: reason, Message: msg, Field: field}
}

// backendInfo is a decoded and validated causeway.dev Backend.
type backendInfo struct {
	obj     *v1alpha1.Backend
	problem *status.Condition // nil when valid
	cluster *ir.Cluster
}
