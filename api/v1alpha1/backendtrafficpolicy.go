package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// BackendTrafficPolicy sets how the gateway talks to backends: load
// balancing, health checks, outlier detection, circuit breaking, retries,
// timeouts and fault injection. It is attached with targetRefs (Gateway API
// policy attachment) to objects of its own namespace:
//
//   - a Gateway: every route attached to it, and their backends;
//   - an HTTPRoute or a GRPCRoute: that route's rules and their backends;
//   - a Service (group "", kind Service; sectionName may name one port) or
//     a Backend (group causeway.dev): that backend wherever it is used.
//
// # Precedence
//
// The more specific attachment wins, field by field: for every leaf field
// the most specific policy that sets it (non-nil) gives its value, and a
// less specific policy fills the fields the others leave unset. Lists
// (retryOn, retriableStatusCodes, expectedStatuses, locality.distribute)
// count as one field; an empty distribute list is set, and restores
// failover.
// Groups where exactly one member may be set count as one field too: the
// health check kind (http, tcp, grpc), the consistent-hash key (header,
// cookie, sourceIP, queryParam) and the abort (httpStatus, grpcStatus).
//
//   - Backend settings (loadBalancer, healthCheck, outlierDetection,
//     circuitBreaker, timeouts.connect, timeouts.idle), most specific
//     first: Service/Backend policy, route policy, Gateway policy.
//   - Request settings (retry, timeouts.request, faultInjection), most
//     specific first: the route rule's own Gateway API fields (retry,
//     timeouts), route policy, Gateway policy. A Service or Backend policy
//     may not set them (its target is then not Accepted).
//
// Backend settings that come from a route or Gateway policy apply to that
// route's traffic only: the route gets its own copy of the backend's
// cluster, named "<cluster>/policy/<namespace>/<policy>" (one such suffix
// per contributing policy, Gateway first), with its own health checks,
// ejections and circuit breaker. When two policies of the same kind of
// target select the same object, the oldest (then first by name) wins and
// the other is Conflicted for that target.
//
// `causeway validate --explain DIR` and the admin API's /config show, for
// each route, the effective settings and the policy field each came from.
//
//	apiVersion: causeway.dev/v1alpha1
//	kind: BackendTrafficPolicy
//	metadata: {name: resilient}
//	spec:
//	  targetRefs:
//	  - {group: gateway.networking.k8s.io, kind: HTTPRoute, name: app}
//	  retry:
//	    numAttempts: 3
//	    perTryTimeout: 500ms
//	    retryOn: [gateway-error, reset, connect-failure]
//	  outlierDetection: {consecutiveGatewayErrors: 3, baseEjectionTime: 10s}
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=causeway
type BackendTrafficPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BackendTrafficPolicySpec `json:"spec"`
}

// BackendTrafficPolicySpec is the policy's targets and settings. Every
// setting is optional: unset means "inherit" (see Precedence), and when no
// policy sets a field the default documented on it applies.
type BackendTrafficPolicySpec struct {
	// TargetRefs are the objects, in the policy's namespace, the policy
	// applies to. At least one.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	TargetRefs []PolicyTargetReference `json:"targetRefs"`

	LoadBalancer     *LoadBalancer     `json:"loadBalancer,omitempty"`
	HealthCheck      *HealthCheck      `json:"healthCheck,omitempty"`
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	CircuitBreaker   *CircuitBreaker   `json:"circuitBreaker,omitempty"`
	Retry            *Retry            `json:"retry,omitempty"`
	Timeouts         *Timeouts         `json:"timeouts,omitempty"`
	FaultInjection   *FaultInjection   `json:"faultInjection,omitempty"`
}

// PolicyTargetReference names one object in the policy's namespace.
//
// +kubebuilder:validation:XValidation:rule="(self.group == 'gateway.networking.k8s.io' && self.kind in ['Gateway', 'HTTPRoute', 'GRPCRoute']) || (self.group.size() == 0 && self.kind == 'Service') || (self.group == 'causeway.dev' && self.kind == 'Backend')",message="a target is a Gateway, HTTPRoute or GRPCRoute (group gateway.networking.k8s.io), a Service (group \"\") or a Backend (group causeway.dev)"
// +kubebuilder:validation:XValidation:rule="!has(self.sectionName) || self.kind == 'Service'",message="sectionName is for Service targets only"
type PolicyTargetReference struct {
	// Group: "gateway.networking.k8s.io" for Gateway, HTTPRoute and
	// GRPCRoute; "" for Service; "causeway.dev" for Backend.
	// +kubebuilder:validation:MaxLength=253
	Group string `json:"group"`
	// Kind: Gateway, HTTPRoute, GRPCRoute, Service or Backend.
	// +kubebuilder:validation:Enum=Gateway;HTTPRoute;GRPCRoute;Service;Backend
	Kind string `json:"kind"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// SectionName, for a Service only, names one of its ports (the
	// ServicePort's name); unset means every port.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	SectionName *string `json:"sectionName,omitempty"`
}

// LoadBalancer chooses an endpoint for each request.
//
// +kubebuilder:validation:XValidation:rule="has(self.consistentHash) == (has(self.type) && self.type in ['RingHash', 'Maglev'])",message="consistentHash is required with RingHash and Maglev and refused with the other types"
type LoadBalancer struct {
	// Type: RoundRobin (the default, weighted by endpoint weight), Random,
	// LeastRequest (the less loaded of two random endpoints), RingHash or
	// Maglev (consistent hashing on consistentHash's key).
	// +kubebuilder:validation:Enum=RoundRobin;Random;LeastRequest;RingHash;Maglev
	Type *string `json:"type,omitempty"`
	// ConsistentHash is the key of RingHash and Maglev; required with
	// them, refused with the others. A request without the key goes to a
	// random endpoint (a cookie key is set on the response instead, so the
	// client's next request carries it).
	ConsistentHash *ConsistentHash `json:"consistentHash,omitempty"`
	// SlowStart ramps the share of a new endpoint (or one back from an
	// ejection) linearly from little to its full weight over this window.
	// Unset: no ramp.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	SlowStart *metav1.Duration `json:"slowStart,omitempty"`
	// Locality sets how traffic is spread over zones and regions. Unset:
	// failover by priority (see LocalityLoadBalancer).
	Locality *LocalityLoadBalancer `json:"locality,omitempty"`
}

// LocalityLoadBalancer chooses between the two ways of using endpoints'
// zones and regions (a Backend endpoint's zone and region, an
// EndpointSlice endpoint's zone; an endpoint without a region matches only
// "*" in the region part).
//
// By default (no distribute rule matches the gateway's own --zone and
// --region) traffic fails over by priority: all of it goes to the healthy
// endpoints of the gateway's zone while at least 70% of that zone's
// endpoints are healthy, then to its region's, then to any.
//
// A matching distribute rule replaces failover with fixed shares: each
// request first picks a locality by weight, then an endpoint of that
// locality with the load balancer's type. Unhealthy and ejected endpoints
// are skipped, and a locality with no healthy endpoint left drops out, its
// share spread over the others in proportion to their weights. When none
// of a rule's localities has a healthy endpoint, failover by priority (and
// panic mode) applies to all endpoints again.
//
//	loadBalancer:
//	  locality:
//	    distribute:
//	    - from: eu-west/eu-west-1a          # gateways in this zone send
//	      to:
//	        eu-west/eu-west-1a: 80          # 80% to their own zone,
//	        eu-west/*: 15                   # 15% to the region's others,
//	        us-east/*: 5                    # 5% to another region
//	    - from: "*"                         # every other gateway
//	      to: {"eu-west/*": 100}
type LocalityLoadBalancer struct {
	// Distribute lists weighted rules; the one whose from matches the
	// gateway's locality most specifically applies (a zone named beats a
	// region named beats "*"). Rules' from must differ. Empty: failover.
	Distribute []LocalityDistribution `json:"distribute,omitempty"`
}

// LocalityDistribution is one rule. A locality is "region/zone", where
// either part may be "*" (any), or "*" alone for anywhere; names may not
// contain "/" or spaces.
type LocalityDistribution struct {
	// From is the gateways' locality this rule is for.
	From string `json:"from"`
	// To maps endpoint localities to percentages (0-100) that sum to 100.
	// An endpoint belongs to the most specific key it matches ("r/z" over
	// "*/z" over "r/*" over "*"); endpoints matching no key take no
	// traffic while the rule applies.
	To map[string]int32 `json:"to"`
}

// ConsistentHash is the request property hashed to pick an endpoint:
// exactly one field is set.
//
// +kubebuilder:validation:XValidation:rule="[has(self.header), has(self.cookie), has(self.sourceIP), has(self.queryParam)].filter(x, x).size() == 1",message="exactly one of header, cookie, sourceIP and queryParam must be set"
type ConsistentHash struct {
	// Header name; its value is the key.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$`
	Header *string `json:"header,omitempty"`
	// Cookie's value is the key; the proxy sets the cookie (a random
	// value) on the response when the request has none.
	Cookie *HashCookie `json:"cookie,omitempty"`
	// SourceIP: the client's address is the key.
	SourceIP *bool `json:"sourceIP,omitempty"`
	// QueryParam name; its first value is the key.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	QueryParam *string `json:"queryParam,omitempty"`
}

// HashCookie is a cookie used as a hash key.
type HashCookie struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[!#$%&'*+\-.^_\x60|~0-9A-Za-z]+$`
	Name string `json:"name"`
	// TTL of the cookie the proxy sets (Max-Age); unset: a session cookie.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	TTL *metav1.Duration `json:"ttl,omitempty"`
	// Path attribute of the cookie the proxy sets; unset: "/".
	// +kubebuilder:validation:Pattern=`^/`
	Path *string `json:"path,omitempty"`
}

// HealthCheck configures health checking of the endpoints.
type HealthCheck struct {
	// Active probes every endpoint periodically; an endpoint failing
	// unhealthyThreshold probes in a row takes no traffic until it passes
	// healthyThreshold in a row.
	Active *ActiveHealthCheck `json:"active,omitempty"`
}

// ActiveHealthCheck is one probe kind (exactly one of http, tcp, grpc) and
// its timing.
//
// +kubebuilder:validation:XValidation:rule="[has(self.http), has(self.tcp), has(self.grpc)].filter(x, x).size() == 1",message="exactly one of http, tcp and grpc must be set"
type ActiveHealthCheck struct {
	// HTTP probes with a GET.
	HTTP *HTTPHealthCheck `json:"http,omitempty"`
	// TCP probes by opening a connection.
	TCP *TCPHealthCheck `json:"tcp,omitempty"`
	// GRPC probes with grpc.health.v1.Health/Check (h2c); SERVING passes.
	GRPC *GRPCHealthCheck `json:"grpc,omitempty"`
	// Interval between probes of one endpoint; default 5s.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	Interval *metav1.Duration `json:"interval,omitempty"`
	// Timeout of one probe; default 1s.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// Jitter: up to this much is added to each interval, at random;
	// default none.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	Jitter *metav1.Duration `json:"jitter,omitempty"`
	// HealthyThreshold: passes in a row that make an endpoint healthy
	// again; default 2.
	// +kubebuilder:validation:Minimum=1
	HealthyThreshold *int32 `json:"healthyThreshold,omitempty"`
	// UnhealthyThreshold: failures in a row that take an endpoint out;
	// default 3.
	// +kubebuilder:validation:Minimum=1
	UnhealthyThreshold *int32 `json:"unhealthyThreshold,omitempty"`
}

// HTTPHealthCheck is a GET of path.
type HTTPHealthCheck struct {
	// Path requested, starting with "/".
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	Path string `json:"path"`
	// Hostname sent as Host; unset: the endpoint's address.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Hostname *string `json:"hostname,omitempty"`
	// ExpectedStatuses pass the probe; default any of 200-399.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Minimum=100
	// +kubebuilder:validation:items:Maximum=599
	ExpectedStatuses []int32 `json:"expectedStatuses,omitempty"`
}

// TCPHealthCheck passes when a connection opens; it has no settings.
type TCPHealthCheck struct{}

// GRPCHealthCheck calls the gRPC health protocol.
type GRPCHealthCheck struct {
	// Service name asked about; unset: the server as a whole ("").
	Service *string `json:"service,omitempty"`
}

// OutlierDetection ejects endpoints whose live requests fail, for a time.
// A counter left unset (or 0) disables its rule.
type OutlierDetection struct {
	// Consecutive5xx: answers 500-599 (and connection failures) in a row
	// that eject an endpoint.
	// +kubebuilder:validation:Minimum=0
	Consecutive5xx *int32 `json:"consecutive5xx,omitempty"`
	// ConsecutiveGatewayErrors: answers 502, 503, 504 (and connection
	// failures) in a row that eject an endpoint.
	// +kubebuilder:validation:Minimum=0
	ConsecutiveGatewayErrors *int32 `json:"consecutiveGatewayErrors,omitempty"`
	// ConsecutiveLocalOriginFailures: connect failures, resets and
	// timeouts in a row that eject an endpoint.
	// +kubebuilder:validation:Minimum=0
	ConsecutiveLocalOriginFailures *int32 `json:"consecutiveLocalOriginFailures,omitempty"`
	// Interval at which ejections are reconsidered; default 10s.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	Interval *metav1.Duration `json:"interval,omitempty"`
	// BaseEjectionTime, multiplied by the number of times the endpoint has
	// been ejected, is how long an ejection lasts; default 30s.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	BaseEjectionTime *metav1.Duration `json:"baseEjectionTime,omitempty"`
	// MaxEjectionPercent of the endpoints may be ejected at once (at least
	// one endpoint); default 10, range 0-100.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MaxEjectionPercent *int32 `json:"maxEjectionPercent,omitempty"`
	// PanicThreshold: when fewer than this percent of the endpoints are
	// healthy, all of them take traffic as if healthy, rather than the few
	// left taking everything; default 50, 0 disables panic mode.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	PanicThreshold *int32 `json:"panicThreshold,omitempty"`
}

// CircuitBreaker caps the concurrency towards one cluster. Unset or 0 means
// unlimited. Requests over a limit are answered 503 at once (response
// flag UO), without reaching the backend.
type CircuitBreaker struct {
	// MaxConnections open to the cluster's endpoints (HTTP/1.1).
	// +kubebuilder:validation:Minimum=0
	MaxConnections *int32 `json:"maxConnections,omitempty"`
	// MaxPendingRequests waiting for a connection when maxConnections is
	// reached.
	// +kubebuilder:validation:Minimum=0
	MaxPendingRequests *int32 `json:"maxPendingRequests,omitempty"`
	// MaxRequests in flight.
	// +kubebuilder:validation:Minimum=0
	MaxRequests *int32 `json:"maxRequests,omitempty"`
	// MaxRetries in flight; a retry over it is not made.
	// +kubebuilder:validation:Minimum=0
	MaxRetries *int32 `json:"maxRetries,omitempty"`
}

// Retry makes the gateway try a failed request again, on the same backend
// (another endpoint when the load balancer picks one). A request is retried
// only when its body can be replayed: no body, or a body of at most 64 KiB
// (buffered before the first attempt). Attempts are spread by exponential
// backoff with full jitter; a Retry-After header in the failed answer
// (seconds or an HTTP date) sets the wait instead, capped at
// backoff.maxInterval. The whole exchange stays within timeouts.request.
type Retry struct {
	// NumAttempts is the number of retries after the first attempt;
	// default 2 once retry is set. 0 disables retries.
	// +kubebuilder:validation:Minimum=0
	NumAttempts *int32 `json:"numAttempts,omitempty"`
	// PerTryTimeout bounds each attempt until the response headers; an
	// attempt over it is abandoned and counts as a gateway error. Unset:
	// only timeouts.request (or the rule's backendRequest) applies.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	PerTryTimeout *metav1.Duration `json:"perTryTimeout,omitempty"`
	// RetryOn lists the conditions that cause a retry; default
	// [connect-failure, reset, gateway-error], plus unavailable on
	// GRPCRoutes and retriable-status-codes when retriableStatusCodes is
	// set:
	//   - 5xx: an answer 500-599, or any failure of connect-failure, reset
	//     or a per-try timeout;
	//   - gateway-error: an answer 502, 503 or 504, a per-try timeout, or
	//     a connect failure or reset;
	//   - reset: the connection failed after it was established, before
	//     the response headers;
	//   - connect-failure: no connection could be opened;
	//   - retriable-status-codes: an answer in retriableStatusCodes;
	//   - unavailable, cancelled, deadline-exceeded, resource-exhausted:
	//     a gRPC answer whose grpc-status (trailers-only response) is
	//     UNAVAILABLE (14), CANCELLED (1), DEADLINE_EXCEEDED (4) or
	//     RESOURCE_EXHAUSTED (8).
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Enum=5xx;gateway-error;reset;connect-failure;retriable-status-codes;unavailable;cancelled;deadline-exceeded;resource-exhausted
	RetryOn []string `json:"retryOn,omitempty"`
	// RetriableStatusCodes, 400-599, used by retriable-status-codes
	// (which setting them adds to retryOn).
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Minimum=400
	// +kubebuilder:validation:items:Maximum=599
	RetriableStatusCodes []int32 `json:"retriableStatusCodes,omitempty"`
	// Backoff spaces the attempts.
	Backoff *RetryBackoff `json:"backoff,omitempty"`
	// Budget caps the retries in flight, so that in an outage retries
	// cannot multiply the load.
	Budget *RetryBudget `json:"budget,omitempty"`
}

// RetryBackoff is exponential: the n-th retry waits a random time between 0
// and min(maxInterval, baseInterval × 2^(n-1)).
//
// +kubebuilder:validation:XValidation:rule="!has(self.baseInterval) || !has(self.maxInterval) || duration(self.maxInterval) >= duration(self.baseInterval)",message="maxInterval may not be below baseInterval"
type RetryBackoff struct {
	// BaseInterval; default 25ms.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	BaseInterval *metav1.Duration `json:"baseInterval,omitempty"`
	// MaxInterval; default 10 × baseInterval. Also caps Retry-After.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	MaxInterval *metav1.Duration `json:"maxInterval,omitempty"`
}

// RetryBudget: retries in flight towards a cluster may not exceed
// max(minRetryConcurrency, percent × requests in flight to it). The
// circuit breaker's maxRetries applies as well.
type RetryBudget struct {
	// Percent of the cluster's requests in flight; default 20, 0-100.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent *int32 `json:"percent,omitempty"`
	// MinRetryConcurrency is always allowed; default 3.
	// +kubebuilder:validation:Minimum=0
	MinRetryConcurrency *int32 `json:"minRetryConcurrency,omitempty"`
}

// Timeouts of the exchange with a backend. Unset: no limit (request), 5s
// (connect), 50s (idle).
type Timeouts struct {
	// Connect bounds opening a connection to an endpoint.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	Connect *metav1.Duration `json:"connect,omitempty"`
	// Request bounds the whole exchange, retries included, until the
	// response headers; answered 504 (flag UT). A route rule's
	// timeouts.request wins over it.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	Request *metav1.Duration `json:"request,omitempty"`
	// Idle closes pooled upstream connections idle this long; keep it
	// below the backends' own keep-alive timeout.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	Idle *metav1.Duration `json:"idle,omitempty"`
}

// FaultInjection delays or fails requests on purpose, for chaos testing.
// A request first gets the delay (if sampled), then the abort (if
// sampled), each sampled independently.
type FaultInjection struct {
	Delay *FaultDelay `json:"delay,omitempty"`
	Abort *FaultAbort `json:"abort,omitempty"`
	// HeaderMatch, when set, limits faults to requests with this header.
	HeaderMatch *FaultHeaderMatch `json:"headerMatch,omitempty"`
}

// FaultDelay holds a request for a fixed time before forwarding it (flag
// DI in the access log).
type FaultDelay struct {
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	FixedDelay metav1.Duration `json:"fixedDelay"`
	// Percentage of requests delayed, 0-100; default 100.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percentage *int32 `json:"percentage,omitempty"`
}

// FaultAbort answers a request itself instead of forwarding it (flag FI):
// exactly one of httpStatus and grpcStatus.
//
// +kubebuilder:validation:XValidation:rule="has(self.httpStatus) != has(self.grpcStatus)",message="exactly one of httpStatus and grpcStatus must be set"
type FaultAbort struct {
	// HTTPStatus, 200-599, answered with an empty body. On a gRPC request
	// it is mapped to a gRPC status as the proxy's own errors are.
	// +kubebuilder:validation:Minimum=200
	// +kubebuilder:validation:Maximum=599
	HTTPStatus *int32 `json:"httpStatus,omitempty"`
	// GRPCStatus, 1-16, answered as a trailers-only gRPC response.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16
	GRPCStatus *int32 `json:"grpcStatus,omitempty"`
	// Percentage of requests aborted, 0-100; default 100.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percentage *int32 `json:"percentage,omitempty"`
}

// FaultHeaderMatch selects requests by one header.
type FaultHeaderMatch struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$`
	Name string `json:"name"`
	// Value, when set, must equal the header's value; unset: the header's
	// presence is enough.
	Value *string `json:"value,omitempty"`
}
