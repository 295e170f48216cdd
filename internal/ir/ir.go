// Package ir is the data-plane contract: the configuration a proxy runs,
// produced by the translator and consumed by the proxy runtime.
//
// The proxy knows nothing of Gateway API; everything it needs is here, in
// plain structs that serialise to JSON (the admin /config view, and later the
// stream to remote proxies). Every element records where it came from
// (Origin) so that status, metrics and the admin API can name the resource.
//
// Ordering is canonical: the translator emits listeners sorted by address,
// virtual hosts by domain specificity and routes in Gateway API precedence
// order, so that two translations of the same resources are byte-identical
// and Version (a content hash) is stable.
//
// This package imports only the standard library.
package ir

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Config is one complete data-plane configuration.
type Config struct {
	// Version is a content hash of everything else; set by Finalize.
	Version   string      `json:"version"`
	Listeners []*Listener `json:"listeners"`
	Clusters  []*Cluster  `json:"clusters"`
}

// Protocol of a listener socket.
type Protocol string

const (
	ProtocolHTTP  Protocol = "HTTP"  // plain HTTP/1.1 and h2c (prior knowledge)
	ProtocolHTTPS Protocol = "HTTPS" // TLS terminated here; h2 and HTTP/1.1 by ALPN
	// ProtocolTLS routes TLS connections by the SNI of their peeked
	// ClientHello (L4Routes). A route with Terminate completes the
	// handshake here and forwards the plaintext (Gateway API TLS listener,
	// mode Terminate); the others get the encrypted stream, ClientHello
	// included, untouched (mode Passthrough). One socket may mix both.
	ProtocolTLS Protocol = "TLS"
	ProtocolTCP Protocol = "TCP" // bytes to the first L4Route's backends
	ProtocolUDP Protocol = "UDP" // datagrams, per-client sessions
)

// Listener is one socket (address:port) shared by every Gateway listener that
// uses it.
type Listener struct {
	// Name is unique within the Config, e.g. "127.0.0.2:80" or "0.0.0.0:80".
	Name string `json:"name"`
	// Address is the IP to bind; "" binds all interfaces.
	Address  string   `json:"address"`
	Port     int      `json:"port"`
	Protocol Protocol `json:"protocol"`
	// TLS is set when Protocol is HTTPS, and when Protocol is TLS and a
	// route terminates (L4Route.Terminate): its certificates are those of
	// the terminating Gateway listeners.
	TLS *TLS `json:"tls,omitempty"`
	// VirtualHosts in precedence order: exact domains first, then wildcard
	// domains longest first, then "*". A request is served by the first
	// virtual host whose domain matches its Host (port removed); if none
	// of that host's routes match, the answer is 404 (no fall through to a
	// less specific virtual host).
	VirtualHosts []*VirtualHost `json:"virtualHosts"`
	// L4Routes serve TLS, TCP and UDP listeners (VirtualHosts is empty
	// then). For TLS they are chosen by SNI: exact hostnames first, then the
	// longest wildcard, then a route without hostnames; a ClientHello that
	// matches none is refused. TCP and UDP use the first route.
	L4Routes []*L4Route `json:"l4Routes,omitempty"`
	// SNIHostnames (HTTPS only) are the hostnames of the Gateway listeners
	// sharing this socket, in the precedence order of VirtualHosts (exact,
	// longer wildcards, then "*" for a listener without hostname), set
	// when there are two or more. The TLS server name and the request's
	// Host (port removed) each select the first entry they match; when
	// both select one and they differ, the request was sent on a
	// connection made for another listener and is answered 421
	// Misdirected Request (RFC 9110 §15.5.20) without routing. A server
	// name that selects none (none sent, and no "*") skips the check.
	SNIHostnames []string `json:"sniHostnames,omitempty"`
	// Gateways lists "namespace/name" of the Gateways that use this socket,
	// for metrics and logs.
	Gateways []string `json:"gateways"`
	// Settings of the connections accepted on this socket (HTTP and HTTPS
	// listeners); nil means the proxy's defaults.
	Settings *ListenerSettings `json:"settings,omitempty"`
}

// ListenerSettings tune the client side of one socket. Zero values mean
// the proxy's defaults (its Options).
type ListenerSettings struct {
	// MaxConnections served at once; accept waits beyond it.
	MaxConnections int `json:"maxConnections,omitempty"`
	// MaxHeaderBytes bounds a request's header block.
	MaxHeaderBytes int `json:"maxHeaderBytes,omitempty"`
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout Duration `json:"idleTimeout,omitempty"`
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout Duration `json:"readHeaderTimeout,omitempty"`
	// HTTP2 settings advertised to clients; nil means the defaults.
	HTTP2 *HTTP2Settings `json:"http2,omitempty"`
	// XFCC is what becomes of X-Forwarded-Client-Cert: XFCCSanitize,
	// XFCCSanitizeSet or XFCCForward; "" means XFCCSanitizeSet. A header
	// sent by the client is removed in every mode.
	XFCC string `json:"xfcc,omitempty"`
	// HTTP3 serves HTTP/3 over QUIC on the UDP port of the same address
	// and number (HTTPS listeners only), with the listener's certificates
	// and routes, and advertises it with Alt-Svc on HTTP/1.1 and HTTP/2
	// responses.
	HTTP3 bool `json:"http3,omitempty"`
}

// X-Forwarded-Client-Cert modes (ListenerSettings.XFCC).
const (
	XFCCSanitize    = "Sanitize"    // remove, never set
	XFCCSanitizeSet = "SanitizeSet" // remove; set Hash, Subject, URI, DNS of a verified client certificate
	XFCCForward     = "Forward"     // as SanitizeSet, plus the certificate and chain (Cert, Chain)
)

// HTTP2Settings are the SETTINGS the server sends; zero means the default.
type HTTP2Settings struct {
	MaxConcurrentStreams uint32 `json:"maxConcurrentStreams,omitempty"`
	// InitialStreamWindow is the flow-control window of each stream.
	InitialStreamWindow int32 `json:"initialStreamWindow,omitempty"`
	// InitialConnWindow is the flow-control window of the connection.
	InitialConnWindow int32 `json:"initialConnWindow,omitempty"`
}

// L4Route forwards whole connections (TCP, TLS) or datagram sessions (UDP).
type L4Route struct {
	// Name: "tcproute/NS/NAME/rule/R", "tlsroute/...", "udproute/...".
	Name   string `json:"name"`
	Origin string `json:"origin"`
	// Gateways, on a socket several Gateways share: those whose listeners
	// placed this route (as Route.Gateways); empty otherwise.
	Gateways []string `json:"gateways,omitempty"`
	// Hostnames (TLS only): SNI patterns, exact or wildcard, in the order
	// they are tried; empty matches any SNI.
	Hostnames []string `json:"hostnames,omitempty"`
	// Backends share connections by weight; Cluster "" refuses its share.
	Backends []*Backend `json:"backends"`
	// IdleTimeout closes a connection or UDP session idle this long;
	// zero means the proxy's default.
	IdleTimeout Duration `json:"idleTimeout,omitempty"`
	// Terminate (TLS listeners only): the connection is terminated with
	// the listener's TLS certificates, chosen by SNI as for HTTPS, before
	// its plaintext is forwarded; false passes it through encrypted. A TLS
	// listener with TLS set and no route with Terminate terminates every
	// route (the meaning of TLS before this field existed).
	Terminate bool `json:"terminate,omitempty"`
}

// TLS is the server side TLS of an HTTPS listener.
type TLS struct {
	// Certificates to choose from by SNI. The first whose SNI patterns
	// match the ClientHello's server name wins (patterns are in precedence
	// order); with no SNI or no match, the first certificate is used.
	Certificates []*Certificate `json:"certificates"`
	// ClientValidation, when set, asks clients for a certificate and
	// verifies it (mutual TLS).
	ClientValidation *ClientValidation `json:"clientValidation,omitempty"`
	// MinVersion and MaxVersion are "1.2" or "1.3"; "" means 1.2 and 1.3.
	MinVersion string `json:"minVersion,omitempty"`
	MaxVersion string `json:"maxVersion,omitempty"`
	// CipherSuites are Go's names of the TLS 1.2 suites offered (TLS 1.3
	// suites are not configurable); empty means Go's defaults.
	CipherSuites []string `json:"cipherSuites,omitempty"`
	// ALPN protocols offered, in preference order; empty means h2 and
	// http/1.1.
	ALPN []string `json:"alpn,omitempty"`
	// SessionTickets: nil or true lets clients resume sessions with
	// tickets; false turns resumption off.
	SessionTickets *bool `json:"sessionTickets,omitempty"`
}

// ClientValidation is how client certificates are verified.
type ClientValidation struct {
	// CACertPEM are the trusted roots, one or more PEM certificates.
	CACertPEM []byte `json:"-"`
	// Optional accepts connections without a certificate, or with one that
	// does not verify (Gateway API AllowInsecureFallback); only verified
	// certificates are forwarded in X-Forwarded-Client-Cert.
	Optional bool `json:"optional,omitempty"`
	// Origin names the ConfigMaps and Secrets the CAs came from.
	Origin string `json:"origin"`
}

// Certificate is a PEM certificate chain and key with the SNI names it serves.
type Certificate struct {
	// SNI patterns, exact ("a.example.com") or wildcard ("*.example.com");
	// empty means any name.
	SNI []string `json:"sni,omitempty"`
	// CertPEM is the chain, leaf first.
	CertPEM []byte `json:"-"`
	// KeyPEM never leaves the process in logs or the admin API.
	KeyPEM []byte `json:"-"`
	// Origin names the Secret, e.g. "Secret/default/example-tls".
	Origin string `json:"origin"`
}

// VirtualHost groups the routes served for one domain on a listener.
type VirtualHost struct {
	// Domain is an exact hostname, a wildcard "*.example.com" (matches one
	// or more labels in place of the star, as Gateway API says), or "*".
	Domain string `json:"domain"`
	// Gateway is "namespace/name" of the Gateway this host belongs to
	// (the first, when several Gateway listeners share the domain).
	Gateway string `json:"gateway"`
	// Routes in precedence order: the first whose Match holds serves the
	// request.
	Routes []*Route `json:"routes"`
}

// Route is one match of one rule of one route resource, with what to do.
type Route struct {
	// Name identifies the route in logs and metrics:
	// "httproute/NAMESPACE/NAME/rule/R/match/M".
	Name string `json:"name"`
	// Origin names the resource and field, e.g.
	// "HTTPRoute/default/app spec.rules[0].matches[1]".
	Origin string `json:"origin"`
	Match  Match  `json:"match"`
	// Gateways ("namespace/name"), on a socket several Gateways share: the
	// Gateways whose listeners placed this route; empty otherwise. A
	// control plane sends a proxy only its Gateways' routes.
	Gateways []string `json:"gateways,omitempty"`

	// Filters of the rule, applied in this order: request header
	// modification, URL rewrite, mirrors; a redirect answers directly.
	RequestHeaders  *HeaderModifier `json:"requestHeaders,omitempty"`
	ResponseHeaders *HeaderModifier `json:"responseHeaders,omitempty"`
	Redirect        *Redirect       `json:"redirect,omitempty"`
	Rewrite         *Rewrite        `json:"rewrite,omitempty"`
	Mirrors         []*Mirror       `json:"mirrors,omitempty"`
	// CORS, nil for none, answers CORS preflights at the gateway and adds
	// the CORS response headers to cross-origin requests.
	CORS *CORS `json:"cors,omitempty"`

	// Backends share the traffic by weight. A Backend with Cluster == ""
	// is invalid: its share of the traffic is answered 500. With no
	// Backends at all (and no Redirect) every request gets 500.
	Backends []*Backend `json:"backends,omitempty"`

	Timeouts Timeouts `json:"timeouts"`

	// GRPC marks a route from a GRPCRoute: errors the proxy answers itself
	// are gRPC statuses (trailers-only responses, e.g. UNAVAILABLE for no
	// healthy backend), and grpc-timeout bounds the request.
	GRPC bool `json:"grpc,omitempty"`

	// Retry, nil for none, retries failed attempts.
	Retry *Retry `json:"retry,omitempty"`
	// Fault, nil for none, delays or aborts requests on purpose.
	Fault *Fault `json:"fault,omitempty"`
	// SessionPersistence is informational: the translator implements it
	// as consistent hashing of the route's clusters (LoadBalancer); the
	// proxy needs nothing more.
	SessionPersistence *SessionPersistence `json:"sessionPersistence,omitempty"`
	// Sources names, for each effective resilience setting of the route,
	// the resource and field it came from, keyed by setting path
	// ("retry.attempts", "timeouts.request", "fault.abort", …); for
	// explanation only (admin /config, validate --explain).
	Sources map[string]string `json:"sources,omitempty"`
}

// Match is the conjunction of conditions a request must meet.
type Match struct {
	Path PathMatch `json:"path"`
	// Method is "" for any.
	Method  string        `json:"method,omitempty"`
	Headers []StringMatch `json:"headers,omitempty"`
	Query   []StringMatch `json:"query,omitempty"`
}

// PathMatchType is how a path is compared.
type PathMatchType string

const (
	PathExact  PathMatchType = "Exact"
	PathPrefix PathMatchType = "PathPrefix" // element-wise: "/foo" matches "/foo" and "/foo/bar", not "/foobar"
	PathRegex  PathMatchType = "RegularExpression"
)

// PathMatch compares the request path (normalised, without query).
type PathMatch struct {
	Type  PathMatchType `json:"type"`
	Value string        `json:"value"`
}

// StringMatchType is how a header or query value is compared.
type StringMatchType string

const (
	MatchExact StringMatchType = "Exact"
	MatchRegex StringMatchType = "RegularExpression"
)

// StringMatch compares one header (name case-insensitive, canonical form
// here) or one query parameter (name case-sensitive) with a value. For
// headers with several values, the values are joined with "," first; for a
// query parameter given several times, the first value is used.
type StringMatch struct {
	Name  string          `json:"name"`
	Type  StringMatchType `json:"type"`
	Value string          `json:"value"`
}

// HeaderModifier sets, adds and removes headers.
type HeaderModifier struct {
	Set    []Header `json:"set,omitempty"`
	Add    []Header `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// Header is one name and value.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// PathModifierType is how a redirect or rewrite changes the path.
type PathModifierType string

const (
	ReplaceFullPath    PathModifierType = "ReplaceFullPath"
	ReplacePrefixMatch PathModifierType = "ReplacePrefixMatch" // only with a PathPrefix match
)

// PathModifier changes the request path.
type PathModifier struct {
	Type  PathModifierType `json:"type"`
	Value string           `json:"value"`
}

// Redirect answers with a redirect instead of forwarding. Nil fields keep
// the request's value.
type Redirect struct {
	Scheme   *string `json:"scheme,omitempty"`
	Hostname *string `json:"hostname,omitempty"`
	// Port: nil means the Gateway API default (the well-known port of the
	// resulting scheme is omitted from Location, otherwise the listener
	// port is kept).
	Port       *int          `json:"port,omitempty"`
	Path       *PathModifier `json:"path,omitempty"`
	StatusCode int           `json:"statusCode"` // 301, 302 (default), 303, 307 or 308
}

// Rewrite changes the request before it is forwarded.
type Rewrite struct {
	Hostname *string       `json:"hostname,omitempty"`
	Path     *PathModifier `json:"path,omitempty"`
}

// Mirror sends a copy of a share of the requests to a cluster; its answers
// are discarded.
type Mirror struct {
	Cluster string `json:"cluster"`
	// Numerator/Denominator of requests mirrored; 1/1 when unset.
	Numerator   int32 `json:"numerator"`
	Denominator int32 `json:"denominator"`
}

// CORS is the Gateway API HTTPRoute CORS filter. The zero value allows no
// origin: preflights are answered without CORS headers.
type CORS struct {
	// AllowOrigins are "*" alone (any origin) or serialized origins
	// "scheme://host[:port]" (scheme http or https, host in lower case;
	// without a port the scheme's default, 80 or 443, is meant). A host
	// may start with "*", which matches one or more characters, dots
	// included ("https://*.example.com"), or be "*" alone (any host).
	AllowOrigins []string `json:"allowOrigins,omitempty"`
	// AllowCredentials adds Access-Control-Allow-Credentials: true; the
	// proxy then never answers "*" in place of an origin, method or header.
	AllowCredentials bool `json:"allowCredentials,omitempty"`
	// AllowMethods are methods, or "*" alone for any. Empty: the header is
	// omitted (browsers then allow the safelisted GET, HEAD, POST).
	AllowMethods []string `json:"allowMethods,omitempty"`
	// AllowHeaders and ExposeHeaders are header names, or "*" alone.
	AllowHeaders  []string `json:"allowHeaders,omitempty"`
	ExposeHeaders []string `json:"exposeHeaders,omitempty"`
	// MaxAge is Access-Control-Max-Age in seconds; 0 means 5, the
	// Gateway API default.
	MaxAge int32 `json:"maxAge,omitempty"`
}

// Backend is a weighted destination of a route.
type Backend struct {
	// Cluster names a Cluster of the Config; "" marks an invalid reference
	// whose share of the traffic is answered 500.
	Cluster string `json:"cluster"`
	Weight  int32  `json:"weight"`
	// Per-backend filters, applied after the route's.
	RequestHeaders  *HeaderModifier `json:"requestHeaders,omitempty"`
	ResponseHeaders *HeaderModifier `json:"responseHeaders,omitempty"`
	// CORS, nil for none, replaces the route's CORS for requests sent to
	// this backend (preflights too: they are answered as if sent here).
	CORS *CORS `json:"cors,omitempty"`
	// Name for logs and metrics, e.g. "Service/default/app:8080".
	Name string `json:"name"`
}

// Timeouts of a route; zero means none.
type Timeouts struct {
	// Request bounds the whole exchange, from request received to response
	// headers sent downstream (Gateway API timeouts.request).
	Request Duration `json:"request,omitempty"`
	// BackendRequest bounds one attempt to a backend, until its response
	// headers arrive (Gateway API timeouts.backendRequest).
	BackendRequest Duration `json:"backendRequest,omitempty"`
}

// Retry is a route's retry policy. The proxy retries only requests whose
// body is replayable (none, or small enough to buffer).
type Retry struct {
	// Attempts is the number of retries after the first attempt.
	Attempts int `json:"attempts"`
	// PerTryTimeout bounds one attempt until its response headers; zero
	// means only the route's timeouts apply.
	PerTryTimeout Duration `json:"perTryTimeout,omitempty"`
	// On lists the retry conditions: RetryOn* values.
	On []string `json:"on"`
	// StatusCodes are retried with RetryOnStatusCodes.
	StatusCodes []int `json:"statusCodes,omitempty"`
	// BackoffBase and BackoffMax shape the exponential backoff with full
	// jitter; zero means 25ms and 10 × BackoffBase. BackoffMax also caps
	// a Retry-After.
	BackoffBase Duration `json:"backoffBase,omitempty"`
	BackoffMax  Duration `json:"backoffMax,omitempty"`
	// Retries in flight per cluster may not exceed
	// max(MinRetryConcurrency, BudgetPercent% of its requests in flight).
	BudgetPercent       int `json:"budgetPercent"`
	MinRetryConcurrency int `json:"minRetryConcurrency"`
}

// Retry conditions (Retry.On).
const (
	RetryOn5xx               = "5xx"
	RetryOnGatewayError      = "gateway-error"
	RetryOnReset             = "reset"
	RetryOnConnectFailure    = "connect-failure"
	RetryOnStatusCodes       = "retriable-status-codes"
	RetryOnUnavailable       = "unavailable"        // gRPC 14
	RetryOnCancelled         = "cancelled"          // gRPC 1
	RetryOnDeadlineExceeded  = "deadline-exceeded"  // gRPC 4
	RetryOnResourceExhausted = "resource-exhausted" // gRPC 8
)

// Fault delays and/or aborts a share of a route's requests.
type Fault struct {
	// Delay holds sampled requests this long before forwarding them.
	Delay        Duration `json:"delay,omitempty"`
	DelayPercent int      `json:"delayPercent,omitempty"` // 0-100
	// AbortStatus (HTTP) or AbortGRPCStatus (gRPC) answers sampled
	// requests; at most one is set.
	AbortStatus     int `json:"abortStatus,omitempty"`
	AbortGRPCStatus int `json:"abortGRPCStatus,omitempty"`
	AbortPercent    int `json:"abortPercent,omitempty"` // 0-100
	// Header, when set, limits faults to requests carrying it (canonical
	// name), with HeaderValue when that is not "".
	Header      string `json:"header,omitempty"`
	HeaderValue string `json:"headerValue,omitempty"`
}

// SessionPersistence is Gateway API session persistence of a route.
type SessionPersistence struct {
	Type SessionType `json:"type"`
	// Name of the cookie or header carrying the session.
	Name string `json:"name"`
	// AbsoluteTimeout is the cookie's Max-Age with CookieLifetime
	// Permanent.
	AbsoluteTimeout Duration       `json:"absoluteTimeout,omitempty"`
	CookieLifetime  CookieLifetime `json:"cookieLifetime,omitempty"`
}

// SessionType is where a session is carried.
type SessionType string

const (
	SessionCookie SessionType = "Cookie"
	SessionHeader SessionType = "Header"
)

// CookieLifetime of a session cookie.
type CookieLifetime string

const (
	CookiePermanent CookieLifetime = "Permanent"
	CookieSession   CookieLifetime = "Session"
)

// Duration is a time.Duration that reads and writes as "1.5s" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// UpstreamProtocol is how a cluster's endpoints are spoken to.
type UpstreamProtocol string

const (
	UpstreamHTTP1 UpstreamProtocol = "HTTP/1.1"
	UpstreamH2C   UpstreamProtocol = "h2c" // HTTP/2 prior knowledge, cleartext
)

// Cluster is a set of interchangeable endpoints.
type Cluster struct {
	// Name is unique, e.g. "service/default/app/8080" or
	// "backend/default/ext".
	Name     string           `json:"name"`
	Protocol UpstreamProtocol `json:"protocol"`
	// Endpoints, in a canonical order.
	Endpoints []Endpoint `json:"endpoints"`
	Origin    string     `json:"origin"`

	// Resilience settings; nil means the defaults documented on each type.
	LoadBalancer   *LoadBalancer     `json:"loadBalancer,omitempty"`
	HealthCheck    *HealthCheck      `json:"healthCheck,omitempty"`
	Outlier        *OutlierDetection `json:"outlierDetection,omitempty"`
	CircuitBreaker *CircuitBreaker   `json:"circuitBreaker,omitempty"`
	// ConnectTimeout bounds dialling an endpoint; zero means 5s.
	ConnectTimeout Duration `json:"connectTimeout,omitempty"`
	// IdleTimeout closes pooled connections idle this long; zero means the
	// upstream default, kept below common server defaults so that a
	// backend never closes a connection the pool is about to reuse.
	IdleTimeout Duration `json:"idleTimeout,omitempty"`
	// TLS to the endpoints (BackendTLSPolicy); nil is plaintext.
	TLS *UpstreamTLS `json:"tls,omitempty"`
	// Sources names, for each resilience setting, the resource and field
	// it came from, keyed by setting path ("loadBalancer.policy",
	// "outlierDetection.consecutive5xx", …); for explanation only.
	Sources map[string]string `json:"sources,omitempty"`
}

// UpstreamTLS is how the proxy verifies (and authenticates to) endpoints.
type UpstreamTLS struct {
	// SNI sent, and the name verified unless SubjectAltNames are given.
	SNI string `json:"sni"`
	// CACertPEM are the trusted roots; empty with SystemCAs uses the
	// system pool.
	CACertPEM []byte `json:"-"`
	SystemCAs bool   `json:"systemCAs,omitempty"`
	// SubjectAltNames, when set, replace hostname verification: the
	// certificate must carry one of them (DNS name or URI).
	SubjectAltNames []string `json:"subjectAltNames,omitempty"`
	// Client certificate for upstream mutual TLS.
	ClientCertPEM []byte `json:"-"`
	ClientKeyPEM  []byte `json:"-"`
	Origin        string `json:"origin"`
}

// LBPolicy is a load-balancing algorithm.
type LBPolicy string

const (
	LBRoundRobin   LBPolicy = "RoundRobin" // the default (weighted by Endpoint.Weight)
	LBRandom       LBPolicy = "Random"
	LBLeastRequest LBPolicy = "LeastRequest" // power of two choices
	LBRingHash     LBPolicy = "RingHash"
	LBMaglev       LBPolicy = "Maglev"
)

// LoadBalancer chooses an endpoint per request.
type LoadBalancer struct {
	Policy LBPolicy `json:"policy"`
	// HashOn keys RingHash and Maglev; the first key present in the
	// request is used, a random endpoint otherwise.
	HashOn []HashKey `json:"hashOn,omitempty"`
	// SlowStart ramps a new endpoint's share up over this window.
	SlowStart Duration `json:"slowStart,omitempty"`
	// LocalityDistribute replaces priority failover for a proxy whose own
	// locality matches a rule's From: traffic is spread over localities by
	// weight. Empty: failover by priority (same zone, region, any).
	LocalityDistribute []LocalityDistribution `json:"localityDistribute,omitempty"`
}

// LocalityDistribution spreads the traffic of proxies in From over
// localities. Localities are "region/zone" patterns in which either part
// may be "*" ("*" alone is "*/*").
type LocalityDistribution struct {
	From string `json:"from"`
	// To, ordered by Locality; weights are percentages summing to 100.
	To []LocalityWeight `json:"to"`
}

// LocalityWeight is the share of one locality pattern.
type LocalityWeight struct {
	Locality string `json:"locality"`
	Weight   int    `json:"weight"`
}

// HashKey is one source of a consistent-hash key; exactly one field is set.
type HashKey struct {
	Header     string      `json:"header,omitempty"`
	Cookie     *HashCookie `json:"cookie,omitempty"`
	SourceIP   bool        `json:"sourceIP,omitempty"`
	QueryParam string      `json:"queryParam,omitempty"`
}

// HashCookie keys on a cookie, set by the proxy when the request lacks it.
type HashCookie struct {
	Name string   `json:"name"`
	TTL  Duration `json:"ttl,omitempty"`
	Path string   `json:"path,omitempty"`
}

// HealthCheck probes every endpoint actively; exactly one of HTTP, TCP and
// GRPC is set.
type HealthCheck struct {
	HTTP *HTTPHealthCheck `json:"http,omitempty"`
	TCP  bool             `json:"tcp,omitempty"`
	GRPC *GRPCHealthCheck `json:"grpc,omitempty"`
	// Interval between probes (default 5s), with up to Jitter added.
	Interval Duration `json:"interval,omitempty"`
	Jitter   Duration `json:"jitter,omitempty"`
	// Timeout of one probe (default 1s).
	Timeout Duration `json:"timeout,omitempty"`
	// Consecutive results that flip an endpoint (defaults 2 and 3).
	HealthyThreshold   int `json:"healthyThreshold,omitempty"`
	UnhealthyThreshold int `json:"unhealthyThreshold,omitempty"`
}

// HTTPHealthCheck is a GET of Path expecting one of ExpectedStatuses
// (default 200-399).
type HTTPHealthCheck struct {
	Path             string `json:"path"`
	Host             string `json:"host,omitempty"`
	ExpectedStatuses []int  `json:"expectedStatuses,omitempty"`
}

// GRPCHealthCheck uses grpc.health.v1.Health/Check.
type GRPCHealthCheck struct {
	Service string `json:"service,omitempty"`
}

// OutlierDetection ejects endpoints that fail passively observed requests.
// Zero counts disable their rule.
type OutlierDetection struct {
	Consecutive5xx                 int `json:"consecutive5xx,omitempty"`
	ConsecutiveGatewayErrors       int `json:"consecutiveGatewayErrors,omitempty"` // 502, 503, 504
	ConsecutiveLocalOriginFailures int `json:"consecutiveLocalOriginFailures,omitempty"`
	// BaseEjectionTime (default 30s) is multiplied by the number of times
	// the endpoint was ejected.
	BaseEjectionTime Duration `json:"baseEjectionTime,omitempty"`
	// Interval at which ejections are reconsidered (default 10s).
	Interval Duration `json:"interval,omitempty"`
	// MaxEjectionPercent of the endpoints may be ejected at once (default 10,
	// at least one endpoint).
	MaxEjectionPercent int `json:"maxEjectionPercent,omitempty"`
	// PanicThreshold: when fewer than this percent of endpoints are healthy,
	// all are used as if healthy (default 50; 0 disables panic mode).
	PanicThreshold *int `json:"panicThreshold,omitempty"`
}

// CircuitBreaker caps a cluster's concurrency; zero means unlimited.
// Overflow is answered 503 with response flag UO.
type CircuitBreaker struct {
	MaxConnections     int `json:"maxConnections,omitempty"`
	MaxPendingRequests int `json:"maxPendingRequests,omitempty"`
	MaxRequests        int `json:"maxRequests,omitempty"`
	MaxRetries         int `json:"maxRetries,omitempty"`
}

// Endpoint is one destination: exactly one of Address, Hostname or Unix.
type Endpoint struct {
	// Address is "IP:port".
	Address string `json:"address,omitempty"`
	// Hostname with Port is resolved by DNS and re-resolved periodically;
	// every resolved address becomes an endpoint.
	Hostname string `json:"hostname,omitempty"`
	Port     int    `json:"port,omitempty"`
	// Unix is a unix socket path.
	Unix string `json:"unix,omitempty"`
	// Weight relative to the cluster's other endpoints; 0 means 1.
	Weight int32 `json:"weight,omitempty"`
	// Zone and Region locate the endpoint for locality-aware routing.
	Zone   string `json:"zone,omitempty"`
	Region string `json:"region,omitempty"`
}

// Finalize computes Version from the content.
func (c *Config) Finalize() {
	c.Version = ""
	b, _ := json.Marshal(c)
	// Key material is excluded from JSON; hash it separately so a rotated
	// certificate is a new version.
	h := sha256.New()
	h.Write(b)
	for _, cl := range c.Clusters {
		if cl.TLS != nil {
			h.Write(cl.TLS.CACertPEM)
			h.Write(cl.TLS.ClientCertPEM)
			h.Write(cl.TLS.ClientKeyPEM)
		}
	}
	for _, l := range c.Listeners {
		if l.TLS == nil {
			continue
		}
		for _, cert := range l.TLS.Certificates {
			h.Write(cert.CertPEM)
			h.Write(cert.KeyPEM)
		}
		if cv := l.TLS.ClientValidation; cv != nil {
			h.Write(cv.CACertPEM)
		}
	}
	c.Version = hex.EncodeToString(h.Sum(nil))[:16]
}
