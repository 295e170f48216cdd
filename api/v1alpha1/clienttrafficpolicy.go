package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// ClientTrafficPolicy tunes how a Gateway's listeners accept clients: TLS
// versions, cipher suites, ALPN and session resumption, connection and
// header limits, timeouts, HTTP/2 settings and the
// X-Forwarded-Client-Cert header. It attaches to Gateways (Gateway API
// policy attachment, direct):
//
//	apiVersion: causeway.dev/v1alpha1
//	kind: ClientTrafficPolicy
//	metadata: {name: strict, namespace: infra}
//	spec:
//	  targetRefs:
//	  - {group: gateway.networking.k8s.io, kind: Gateway, name: edge, sectionName: https}
//	  tls: {minVersion: "1.3", alpnProtocols: [h2, http/1.1]}
//	  connection: {maxConnections: 5000, idleTimeout: 2m}
//	  http: {maxHeaderBytes: 32768, requestHeaderTimeout: 5s}
//	  http2: {maxConcurrentStreams: 200}
//	  http3: {enabled: true}
//	  xfcc: SanitizeSet
//
// Precedence: a policy targeting a listener (sectionName set) wins over one
// targeting the whole Gateway; fields are not merged between the two. Two
// policies on the same target conflict: the oldest (creationTimestamp, then
// namespace/name) wins, the other is reported Accepted=False, reason
// Conflicted. Settings apply to HTTP and HTTPS listeners (tls: to HTTPS
// only). Listeners on one port share one socket, so they must end up with
// the same settings; a listener whose settings differ from those of the
// listener already on its port is not served (Conflicted).
//
// Status: one entry per targetRef (Gateway API's PolicyAncestorStatus),
// with condition Accepted and reason Accepted, Invalid, TargetNotFound or
// Conflicted.
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=causeway
type ClientTrafficPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ClientTrafficPolicySpec `json:"spec"`
}

// ClientTrafficPolicySpec is what a ClientTrafficPolicy sets. Every field
// is optional; an unset field keeps the proxy's default.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.http3) && self.http3.enabled && has(self.tls) && has(self.tls.maxVersion) && self.tls.maxVersion == '1.2')",message="http3 needs TLS 1.3: tls.maxVersion may not be 1.2"
type ClientTrafficPolicySpec struct {
	// TargetRefs are the Gateways (group gateway.networking.k8s.io, kind
	// Gateway) in the policy's namespace that it applies to; sectionName
	// narrows a target to one listener by name. At least one.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(r, r.group == 'gateway.networking.k8s.io' && r.kind == 'Gateway')",message="targetRefs must be Gateways (group gateway.networking.k8s.io, kind Gateway)"
	TargetRefs []gwv1.LocalPolicyTargetReferenceWithSectionName `json:"targetRefs"`
	// TLS of HTTPS listeners.
	TLS *ClientTLSSettings `json:"tls,omitempty"`
	// Connection limits and timeouts.
	Connection *ConnectionSettings `json:"connection,omitempty"`
	// HTTP request limits.
	HTTP *HTTPSettings `json:"http,omitempty"`
	// HTTP2 settings the server announces to clients.
	HTTP2 *HTTP2Settings `json:"http2,omitempty"`
	// HTTP3 serves HTTP/3 over QUIC on HTTPS listeners. Off by default.
	HTTP3 *HTTP3Settings `json:"http3,omitempty"`
	// XFCC is what becomes of the X-Forwarded-Client-Cert request header,
	// Envoy's format for the client certificate of a mutual TLS
	// connection (Hash=<sha256 of the DER, hex>;Subject="...";URI=...;DNS=...):
	//
	//   - Sanitize: removed, never set.
	//   - SanitizeSet (the default): removed, then set when the client
	//     presented a certificate that verified against the listener's CAs
	//     (Gateway spec.tls.frontend).
	//   - Forward: as SanitizeSet, and the certificate itself and its chain
	//     are forwarded too (Cert="..." and Chain="...", URL-encoded PEM),
	//     for backends that verify certificates themselves.
	//
	// A header sent by the client is always removed: a client can never
	// inject it.
	XFCC *XFCCMode `json:"xfcc,omitempty"`
}

// XFCCMode is a value of ClientTrafficPolicySpec.XFCC.
//
// +kubebuilder:validation:Enum=Sanitize;SanitizeSet;Forward
type XFCCMode string

// XFCC modes.
const (
	XFCCSanitize    XFCCMode = "Sanitize"
	XFCCSanitizeSet XFCCMode = "SanitizeSet"
	XFCCForward     XFCCMode = "Forward"
)

// ClientTLSSettings tune the TLS handshake of HTTPS listeners.
//
// +kubebuilder:validation:XValidation:rule="!has(self.minVersion) || !has(self.maxVersion) || self.minVersion <= self.maxVersion",message="maxVersion may not be below minVersion"
type ClientTLSSettings struct {
	// MinVersion is the lowest TLS version accepted: "1.2" (the default)
	// or "1.3".
	// +kubebuilder:validation:Enum="1.2";"1.3"
	MinVersion *string `json:"minVersion,omitempty"`
	// MaxVersion is the highest TLS version accepted: "1.2" or "1.3" (the
	// default). Not below MinVersion.
	// +kubebuilder:validation:Enum="1.2";"1.3"
	MaxVersion *string `json:"maxVersion,omitempty"`
	// CipherSuites offered for TLS 1.2, by their IANA names as Go spells
	// them (e.g. TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); only suites Go
	// considers secure. TLS 1.3 suites are fixed and cannot be listed, so
	// this field needs a maxVersion of 1.2 or a minVersion below 1.3 to
	// matter. With h2 among the ALPN protocols, one of the suites HTTP/2
	// requires (TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 or
	// TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) must be listed. Empty: Go's
	// defaults.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Pattern=`^TLS_[A-Z0-9_]+$`
	CipherSuites []string `json:"cipherSuites,omitempty"`
	// ALPNProtocols offered, in preference order: "h2" and "http/1.1".
	// Leaving h2 out serves HTTP/1.1 only; a client that offers only
	// protocols outside the list is refused at the handshake. Empty: h2,
	// http/1.1.
	// +kubebuilder:validation:MaxItems=2
	// +kubebuilder:validation:items:Enum=h2;http/1.1
	// +listType=set
	ALPNProtocols []string `json:"alpnProtocols,omitempty"`
	// SessionResumption lets clients resume TLS sessions with session
	// tickets, saving a full handshake. Default true; false makes every
	// connection do a full handshake.
	SessionResumption *bool `json:"sessionResumption,omitempty"`
}

// ConnectionSettings limit the connections of a listener.
type ConnectionSettings struct {
	// MaxConnections served at once on the listener's socket; further
	// clients wait in the kernel's accept queue. At least 1. Default: the
	// proxy's (10000).
	// +kubebuilder:validation:Minimum=1
	MaxConnections *int32 `json:"maxConnections,omitempty"`
	// IdleTimeout closes a client connection that has no request in
	// flight for this long, e.g. "90s". Default: the proxy's (120s).
	IdleTimeout *gwv1.Duration `json:"idleTimeout,omitempty"`
}

// HTTPSettings limit HTTP requests.
type HTTPSettings struct {
	// MaxHeaderBytes bounds the request line and headers of one request;
	// beyond it the answer is 431. At least 1024. Default: the proxy's
	// (64 KiB).
	// +kubebuilder:validation:Minimum=1024
	MaxHeaderBytes *int32 `json:"maxHeaderBytes,omitempty"`
	// RequestHeaderTimeout bounds the time a client takes to send a
	// request's headers, e.g. "5s". Default: the proxy's (10s).
	RequestHeaderTimeout *gwv1.Duration `json:"requestHeaderTimeout,omitempty"`
}

// HTTP3Settings switch HTTP/3 (RFC 9114) on for HTTPS listeners.
type HTTP3Settings struct {
	// Enabled serves HTTP/3 on the UDP port of the same number as the
	// listener's TCP port, with the same certificates, client validation
	// and routes, and advertises it to HTTP/1.1 and HTTP/2 clients with
	// an Alt-Svc response header (h3=":PORT"; ma=86400). QUIC needs TLS
	// 1.3, so tls.maxVersion may not be "1.2" with it. HTTP listeners
	// ignore it. Default false.
	Enabled bool `json:"enabled"`
}

// HTTP2Settings are announced to HTTP/2 clients in the server's SETTINGS
// frame (RFC 9113 section 6.5.2).
type HTTP2Settings struct {
	// MaxConcurrentStreams a client may open on one connection; at least
	// 1. Default 250.
	// +kubebuilder:validation:Minimum=1
	MaxConcurrentStreams *int32 `json:"maxConcurrentStreams,omitempty"`
	// InitialStreamWindowSize is each stream's flow-control window for
	// request bodies, in bytes; at least 1. Default 1 MiB.
	// +kubebuilder:validation:Minimum=1
	InitialStreamWindowSize *int32 `json:"initialStreamWindowSize,omitempty"`
	// InitialConnectionWindowSize is the whole connection's flow-control
	// window, in bytes; at least 65535 (the protocol's initial window).
	// Default 1 MiB.
	// +kubebuilder:validation:Minimum=65535
	InitialConnectionWindowSize *int32 `json:"initialConnectionWindowSize,omitempty"`
}
