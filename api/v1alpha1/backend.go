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
type Backend struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BackendSpec `json:"spec"`
}

// BackendSpec lists the endpoints of a Backend.
type BackendSpec struct {
	// Endpoints receive the traffic, balanced among them. At least one.
	Endpoints []BackendEndpoint `json:"endpoints"`
	// AppProtocol is how the endpoints are spoken to: "http" (HTTP/1.1,
	// the default) or "kubernetes.io/h2c" (HTTP/2 cleartext, prior
	// knowledge).
	AppProtocol *string `json:"appProtocol,omitempty"`
}

// BackendEndpoint is exactly one of IP, FQDN or Unix.
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
	Zone   string `json:"zone,omitempty"`
	Region string `json:"region,omitempty"`
}

// IPEndpoint is an IP address and port.
type IPEndpoint struct {
	Address string `json:"address"`
	Port    int32  `json:"port"`
}

// FQDNEndpoint is a DNS name and port.
type FQDNEndpoint struct {
	Hostname string `json:"hostname"`
	Port     int32  `json:"port"`
}

// UnixEndpoint is the path of a unix domain socket.
type UnixEndpoint struct {
	Path string `json:"path"`
}
