// Package resource decodes YAML into typed resources and holds the immutable
// Snapshot of everything a provider has read. It is the translator's input.
package resource

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/api/v1alpha1"
	"causeway.dev/causeway/internal/status"
)

// Snapshot is a consistent set of resources. It is never modified once
// published; a change produces a new Snapshot.
//
// Resources are kept in the order they were read (files in lexical path
// order, documents in file order). Objects without metadata.namespace are
// given "default" (Namespace objects excepted).
type Snapshot struct {
	GatewayClasses  []*gwv1.GatewayClass
	Gateways        []*gwv1.Gateway
	ListenerSets    []*gwv1.ListenerSet    // v1
	HTTPRoutes      []*gwv1.HTTPRoute      // v1 and v1beta1, decoded as v1
	GRPCRoutes      []*gwv1.GRPCRoute      // v1
	ReferenceGrants []*gwv1.ReferenceGrant // v1 and v1beta1, decoded as v1
	TLSRoutes       []*gwv1.TLSRoute       // v1, v1alpha3 and v1alpha2, decoded as v1
	TCPRoutes       []*gwv1.TCPRoute       // v1 and v1alpha2, decoded as v1
	UDPRoutes       []*gwv1.UDPRoute       // v1 and v1alpha2, decoded as v1
	Namespaces      []*corev1.Namespace    // for allowedRoutes selectors
	Services        []*corev1.Service
	EndpointSlices  []*discoveryv1.EndpointSlice
	Secrets         []*corev1.Secret
	ConfigMaps      []*corev1.ConfigMap // CA bundles (key ca.crt)
	Backends        []*v1alpha1.Backend

	ClientTrafficPolicies []*v1alpha1.ClientTrafficPolicy

	BackendTrafficPolicies []*v1alpha1.BackendTrafficPolicy

	BackendTLSPolicies []*gwv1.BackendTLSPolicy // v1

	// Sources maps each resource to the file and document it came from.
	Sources map[status.Ref]status.Source
	// Problems are documents that could not be decoded, or kinds that are
	// not understood: reported, never fatal.
	Problems []Problem
}

// Problem is a document that was not taken.
type Problem struct {
	Source status.Source
	// Ref is as much of the resource as could be read (may be empty).
	Ref     status.Ref
	Message string
}

// Source returns where ref came from (zero if unknown).
func (s *Snapshot) Source(ref status.Ref) status.Source { return s.Sources[ref] }
