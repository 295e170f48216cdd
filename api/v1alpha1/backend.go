// +groupName=causeway.dev

// Package v1alpha1 holds Causeway's own resource kinds, API group
// causeway.dev, version v1alpha1. The field comments are the user reference.
package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Group is the API group of Causeway's kinds.
const Group = "causeway.dev"

// Version of this package's kinds.
const Version = "v1alpha1"

// Backend is a set of endpoints outside Kubernetes' Service model, usable as
// a backendRef (group causeway.dev, kind Backend) from any route.
//
//	apiVersion: causeway.dev/v1alpha1
//	kind: Backend
//	metadata: {name: legacy}
//	spec:
//	  endpoints:
//	  - ip: {address: 10.0.0.7, port: 8080}
//	  - fqdn: {hostname: api.internal, port: 443}
//	  - unix: {path: /run/app.sock}
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=causeway
type Backend struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BackendSpec `json:"spec"`
}

// BackendSpec lists the endpoints of a Backend.
type BackendSpec struct {
	// Endpoints receive the traffic, balanced among them. At least one.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	Endpoints []BackendEndpoint `json:"endpoints"`
	// AppProtocol is how the endpoints are spoken to: "http" (HTTP/1.1,
	// the default) or "kubernetes.io/h2c" (HTTP/2 cleartext, prior
	// knowledge).
	// +kubebuilder:validation:Enum=http;kubernetes.io/h2c
	AppProtocol *string `json:"appProtocol,omitempty"`
}

// BackendEndpoint is exactly one of IP, FQDN or Unix.
//
// +kubebuilder:validation:XValidation:rule="[has(self.ip), has(self.fqdn), has(self.unix)].filter(x, x).size() == 1",message="exactly one of ip, fqdn and unix must be set"
type BackendEndpoint struct {
	// IP is a literal IPv4 or IPv6 address and port.
	IP *IPEndpoint `json:"ip,omitempty"`
	// FQDN is a hostname resolved by DNS, and re-resolved periodically;
	// every address it resolves to becomes an endpoint.
	FQDN *FQDNEndpoint `json:"fqdn,omitempty"`
	// Unix is a unix domain socket on the proxy's host.
	Unix *UnixEndpoint `json:"unix,omitempty"`
	// Zone and Region locate the endpoint for locality-aware load
	// balancing: a gateway started with --zone/--region prefers endpoints
	// of its own zone, then region, and fails over when too few of them
	// are healthy (see BackendTrafficPolicy and internal/upstream).
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[^/ ]*$`
	Zone string `json:"zone,omitempty"`
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[^/ ]*$`
	Region string `json:"region,omitempty"`
}

// IPEndpoint is an IP address and port.
type IPEndpoint struct {
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be an IPv4 or IPv6 address"
	Address string `json:"address"`
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
}

// FQDNEndpoint is a DNS name and port.
type FQDNEndpoint struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*\.?$`
	Hostname string `json:"hostname"`
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
}

// UnixEndpoint is the path of a unix domain socket.
type UnixEndpoint struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=107
	Path string `json:"path"`
}
