package translate

import (
	"fmt"
	"net/textproto"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"causeway.dev/causeway/api/v1alpha1"
	"causeway.dev/causeway/internal/ir"
)

// policyCompiler accumulates the settings of one BackendTrafficPolicy.
type policyCompiler struct {
	origin string // "BackendTrafficPolicy/ns/name"
	l      layer
	err    *fieldErr
}

func (pc *policyCompiler) fail(field, format string, args ...any) {
	if pc.err == nil {
		pc.err = unsupported(field, format, args...)
	}
}

func (pc *policyCompiler) cluster(key, field string, f func(*ir.Cluster)) {
	pc.l.settings = append(pc.l.settings, setting{key: key, source: pc.origin + " " + field, cluster: f})
}

func (pc *policyCompiler) route(key, field string, f func(*ir.Route)) {
	pc.l.settings = append(pc.l.settings, setting{key: key, source: pc.origin + " " + field, route: f})
}

// duration validates an optional positive duration.
func (pc *policyCompiler) duration(d *metav1.Duration, field string) (ir.Duration, bool) {
	if d == nil {
		return 0, false
	}
	if d.Duration <= 0 {
		pc.fail(field, "%s must be positive", d.Duration)
		return 0, false
	}
	return ir.Duration(d.Duration), true
}

// count validates an optional integer in [lo, hi].
func (pc *policyCompiler) count(v *int32, lo, hi int, field string) (int, bool) {
	if v == nil {
		return 0, false
	}
	if int(*v) < lo || int(*v) > hi {
		pc.fail(field, "%d is out of range %d-%d", *v, lo, hi)
		return 0, false
	}
	return int(*v), true
}

// compilePolicy validates a policy and turns it into settings; the error
// names the first invalid field.
func compilePolicy(p *v1alpha1.BackendTrafficPolicy) (*layer, *fieldErr) {
	pc := &policyCompiler{origin: kindBTP + "/" + p.Namespace + "/" + p.Name}
	s := &p.Spec
	pc.loadBalancer(s.LoadBalancer)
	pc.healthCheck(s.HealthCheck)
	pc.outlier(s.OutlierDetection)
	pc.breaker(s.CircuitBreaker)
	pc.retry(s.Retry)
	pc.timeouts(s.Timeouts)
	pc.fault(s.FaultInjection)
	if pc.err != nil {
		return nil, pc.err
	}
	return &pc.l, nil
}

func (pc *policyCompiler) loadBalancer(l *v1alpha1.LoadBalancer) {
	if l == nil {
		return
	}
	const f = "spec.loadBalancer"
	var policy ir.LBPolicy
	if l.Type != nil {
		policy = ir.LBPolicy(*l.Type)
		switch policy {
		case ir.LBRoundRobin, ir.LBRandom, ir.LBLeastRequest, ir.LBRingHash, ir.LBMaglev:
		default:
			pc.fail(f+".type", "load balancer type %q is not supported; use RoundRobin, Random, LeastRequest, RingHash or Maglev", policy)
			return
		}
		pc.cluster("loadBalancer.policy", f+".type", func(c *ir.Cluster) { lb(c).Policy = policy })
	}
	hashing := policy == ir.LBRingHash || policy == ir.LBMaglev
	if ch := l.ConsistentHash; ch != nil {
		if l.Type != nil && !hashing {
			pc.fail(f+".consistentHash", "consistentHash needs type RingHash or Maglev, not %s", policy)
			return
		}
		key, ok := pc.hashKey(ch, f+".consistentHash")
		if !ok {
			return
		}
		pc.cluster("loadBalancer.hashOn", f+".consistentHash", func(c *ir.Cluster) { lb(c).HashOn = []ir.HashKey{key} })
	} else if hashing {
		pc.fail(f+".consistentHash", "type %s needs consistentHash (header, cookie, sourceIP or queryParam)", policy)
	}
	if d, ok := pc.duration(l.SlowStart, f+".slowStart"); ok {
		pc.cluster("loadBalancer.slowStart", f+".slowStart", func(c *ir.Cluster) { lb(c).SlowStart = d })
	}
}

func (pc *policyCompiler) hashKey(ch *v1alpha1.ConsistentHash, f string) (ir.HashKey, bool) {
	n := 0
	var key ir.HashKey
	if ch.Header != nil {
		n++
		if !validHeaderName(*ch.Header) {
			pc.fail(f+".header", "%q is not a valid header name", *ch.Header)
			return key, false
		}
		key.Header = textproto.CanonicalMIMEHeaderKey(*ch.Header)
	}
	if c := ch.Cookie; c != nil {
		n++
		if !validHeaderName(c.Name) {
			pc.fail(f+".cookie.name", "%q is not a valid cookie name", c.Name)
			return key, false
		}
		key.Cookie = &ir.HashCookie{Name: c.Name, Path: "/"}
		if c.Path != nil {
			if !strings.HasPrefix(*c.Path, "/") {
				pc.fail(f+".cookie.path", "path %q must start with /", *c.Path)
				return key, false
			}
			key.Cookie.Path = *c.Path
		}
		if d, ok := pc.duration(c.TTL, f+".cookie.ttl"); ok {
			key.Cookie.TTL = d
		}
	}
	if ch.SourceIP != nil {
		n++
		key.SourceIP = *ch.SourceIP
		if !key.SourceIP {
			pc.fail(f+".sourceIP", "sourceIP: false selects no key; remove it or set true")
			return key, false
		}
	}
	if ch.QueryParam != nil {
		n++
		if *ch.QueryParam == "" {
			pc.fail(f+".queryParam", "the query parameter name is empty")
			return key, false
		}
		key.QueryParam = *ch.QueryParam
	}
	if n != 1 {
		pc.fail(f, "exactly one of header, cookie, sourceIP or queryParam must be set, found %d", n)
		return key, false
	}
	return key, pc.err == nil
}

func (pc *policyCompiler) healthCheck(h *v1alpha1.HealthCheck) {
	if h == nil || h.Active == nil {
		return
	}
	a := h.Active
	const f = "spec.healthCheck.active"
	n := 0
	for _, set := range []bool{a.HTTP != nil, a.TCP != nil, a.GRPC != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		pc.fail(f, "exactly one of http, tcp or grpc must be set, found %d", n)
		return
	}
	switch {
	case a.HTTP != nil:
		hh := &ir.HTTPHealthCheck{Path: a.HTTP.Path}
		if err := validPath(hh.Path); err != nil {
			pc.fail(f+".http.path", "%v", err)
			return
		}
		if a.HTTP.Hostname != nil {
			if err := validHostname(*a.HTTP.Hostname, false); err != nil {
				pc.fail(f+".http.hostname", "%v", err)
				return
			}
			hh.Host = *a.HTTP.Hostname
		}
		for i, s := range a.HTTP.ExpectedStatuses {
			if s < 100 || s > 599 {
				pc.fail(fmt.Sprintf("%s.http.expectedStatuses[%d]", f, i), "status %d is out of range 100-599", s)
				return
			}
			hh.ExpectedStatuses = append(hh.ExpectedStatuses, int(s))
		}
		pc.cluster("healthCheck.kind", f+".http", func(c *ir.Cluster) {
			h := ensure(&c.HealthCheck)
			h.HTTP, h.TCP, h.GRPC = hh, false, nil
		})
	case a.TCP != nil:
		pc.cluster("healthCheck.kind", f+".tcp", func(c *ir.Cluster) {
			h := ensure(&c.HealthCheck)
			h.HTTP, h.TCP, h.GRPC = nil, true, nil
		})
	default:
		g := &ir.GRPCHealthCheck{}
		if a.GRPC.Service != nil {
			g.Service = *a.GRPC.Service
		}
		pc.cluster("healthCheck.kind", f+".grpc", func(c *ir.Cluster) {
			h := ensure(&c.HealthCheck)
			h.HTTP, h.TCP, h.GRPC = nil, false, g
		})
	}
	if d, ok := pc.duration(a.Interval, f+".interval"); ok {
		pc.cluster("healthCheck.interval", f+".interval", func(c *ir.Cluster) { ensure(&c.HealthCheck).Interval = d })
	}
	if d, ok := pc.duration(a.Timeout, f+".timeout"); ok {
		pc.cluster("healthCheck.timeout", f+".timeout", func(c *ir.Cluster) { ensure(&c.HealthCheck).Timeout = d })
	}
	if a.Jitter != nil && a.Jitter.Duration < 0 {
		pc.fail(f+".jitter", "%s must not be negative", a.Jitter.Duration)
	} else if a.Jitter != nil {
		d := dur(a.Jitter)
		pc.cluster("healthCheck.jitter", f+".jitter", func(c *ir.Cluster) { ensure(&c.HealthCheck).Jitter = d })
	}
	if v, ok := pc.count(a.HealthyThreshold, 1, 1000, f+".healthyThreshold"); ok {
		pc.cluster("healthCheck.healthyThreshold", f+".healthyThreshold", func(c *ir.Cluster) { ensure(&c.HealthCheck).HealthyThreshold = v })
	}
	if v, ok := pc.count(a.UnhealthyThreshold, 1, 1000, f+".unhealthyThreshold"); ok {
		pc.cluster("healthCheck.unhealthyThreshold", f+".unhealthyThreshold", func(c *ir.Cluster) { ensure(&c.HealthCheck).UnhealthyThreshold = v })
	}
}

func (pc *policyCompiler) outlier(o *v1alpha1.OutlierDetection) {
	if o == nil {
		return
	}
	const f = "spec.outlierDetection"
	const max = 1 << 20
	if v, ok := pc.count(o.Consecutive5xx, 0, max, f+".consecutive5xx"); ok {
		pc.cluster("outlierDetection.consecutive5xx", f+".consecutive5xx", func(c *ir.Cluster) { ensure(&c.Outlier).Consecutive5xx = v })
	}
	if v, ok := pc.count(o.ConsecutiveGatewayErrors, 0, max, f+".consecutiveGatewayErrors"); ok {
		pc.cluster("outlierDetection.consecutiveGatewayErrors", f+".consecutiveGatewayErrors", func(c *ir.Cluster) { ensure(&c.Outlier).ConsecutiveGatewayErrors = v })
	}
	if v, ok := pc.count(o.ConsecutiveLocalOriginFailures, 0, max, f+".consecutiveLocalOriginFailures"); ok {
		pc.cluster("outlierDetection.consecutiveLocalOriginFailures", f+".consecutiveLocalOriginFailures", func(c *ir.Cluster) { ensure(&c.Outlier).ConsecutiveLocalOriginFailures = v })
	}
	if d, ok := pc.duration(o.Interval, f+".interval"); ok {
		pc.cluster("outlierDetection.interval", f+".interval", func(c *ir.Cluster) { ensure(&c.Outlier).Interval = d })
	}
	if d, ok := pc.duration(o.BaseEjectionTime, f+".baseEjectionTime"); ok {
		pc.cluster("outlierDetection.baseEjectionTime", f+".baseEjectionTime", func(c *ir.Cluster) { ensure(&c.Outlier).BaseEjectionTime = d })
	}
	if v, ok := pc.count(o.MaxEjectionPercent, 0, 100, f+".maxEjectionPercent"); ok {
		pc.cluster("outlierDetection.maxEjectionPercent", f+".maxEjectionPercent", func(c *ir.Cluster) { ensure(&c.Outlier).MaxEjectionPercent = v })
	}
	if v, ok := pc.count(o.PanicThreshold, 0, 100, f+".panicThreshold"); ok {
		pc.cluster("outlierDetection.panicThreshold", f+".panicThreshold", func(c *ir.Cluster) { ensure(&c.Outlier).PanicThreshold = &v })
	}
}

func (pc *policyCompiler) breaker(b *v1alpha1.CircuitBreaker) {
	if b == nil {
		return
	}
	const f = "spec.circuitBreaker"
	const max = 1 << 30
	if v, ok := pc.count(b.MaxConnections, 0, max, f+".maxConnections"); ok {
		pc.cluster("circuitBreaker.maxConnections", f+".maxConnections", func(c *ir.Cluster) { ensure(&c.CircuitBreaker).MaxConnections = v })
	}
	if v, ok := pc.count(b.MaxPendingRequests, 0, max, f+".maxPendingRequests"); ok {
		pc.cluster("circuitBreaker.maxPendingRequests", f+".maxPendingRequests", func(c *ir.Cluster) { ensure(&c.CircuitBreaker).MaxPendingRequests = v })
	}
	if v, ok := pc.count(b.MaxRequests, 0, max, f+".maxRequests"); ok {
		pc.cluster("circuitBreaker.maxRequests", f+".maxRequests", func(c *ir.Cluster) { ensure(&c.CircuitBreaker).MaxRequests = v })
	}
	if v, ok := pc.count(b.MaxRetries, 0, max, f+".maxRetries"); ok {
		pc.cluster("circuitBreaker.maxRetries", f+".maxRetries", func(c *ir.Cluster) { ensure(&c.CircuitBreaker).MaxRetries = v })
	}
}

// retryConditions are the accepted retryOn values.
var retryConditions = []string{
	ir.RetryOn5xx, ir.RetryOnGatewayError, ir.RetryOnReset, ir.RetryOnConnectFailure, ir.RetryOnStatusCodes,
	ir.RetryOnUnavailable, ir.RetryOnCancelled, ir.RetryOnDeadlineExceeded, ir.RetryOnResourceExhausted,
}

func (pc *policyCompiler) retry(r *v1alpha1.Retry) {
	if r == nil {
		return
	}
	const f = "spec.retry"
	// An empty retry still turns retries on, with the defaults.
	pc.route("retry", f, func(rt *ir.Route) { ensure(&rt.Retry) })
	if v, ok := pc.count(r.NumAttempts, 0, 100, f+".numAttempts"); ok {
		pc.route("retry.attempts", f+".numAttempts", func(rt *ir.Route) { ensure(&rt.Retry).Attempts = v })
	}
	if d, ok := pc.duration(r.PerTryTimeout, f+".perTryTimeout"); ok {
		pc.route("retry.perTryTimeout", f+".perTryTimeout", func(rt *ir.Route) { ensure(&rt.Retry).PerTryTimeout = d })
	}
	if len(r.RetryOn) > 0 {
		on := make([]string, 0, len(r.RetryOn))
		for i, c := range r.RetryOn {
			if !slices.Contains(retryConditions, c) {
				pc.fail(fmt.Sprintf("%s.retryOn[%d]", f, i), "retry condition %q is not supported; use one of %s", c, strings.Join(retryConditions, ", "))
				return
			}
			if !slices.Contains(on, c) {
				on = append(on, c)
			}
		}
		pc.route("retry.on", f+".retryOn", func(rt *ir.Route) { ensure(&rt.Retry).On = on })
	}
	if len(r.RetriableStatusCodes) > 0 {
		codes := make([]int, 0, len(r.RetriableStatusCodes))
		for i, c := range r.RetriableStatusCodes {
			if c < 400 || c > 599 {
				pc.fail(fmt.Sprintf("%s.retriableStatusCodes[%d]", f, i), "status code %d is out of range 400-599", c)
				return
			}
			codes = append(codes, int(c))
		}
		pc.route("retry.statusCodes", f+".retriableStatusCodes", func(rt *ir.Route) { ensure(&rt.Retry).StatusCodes = codes })
	}
	if b := r.Backoff; b != nil {
		base, okb := pc.duration(b.BaseInterval, f+".backoff.baseInterval")
		mx, okm := pc.duration(b.MaxInterval, f+".backoff.maxInterval")
		if okb && okm && mx < base {
			pc.fail(f+".backoff.maxInterval", "maxInterval %s is shorter than baseInterval %s", b.MaxInterval.Duration, b.BaseInterval.Duration)
			return
		}
		if okb {
			pc.route("retry.backoffBase", f+".backoff.baseInterval", func(rt *ir.Route) { ensure(&rt.Retry).BackoffBase = base })
		}
		if okm {
			pc.route("retry.backoffMax", f+".backoff.maxInterval", func(rt *ir.Route) { ensure(&rt.Retry).BackoffMax = mx })
		}
	}
	if b := r.Budget; b != nil {
		if v, ok := pc.count(b.Percent, 0, 100, f+".budget.percent"); ok {
			pc.route("retry.budgetPercent", f+".budget.percent", func(rt *ir.Route) { ensure(&rt.Retry).BudgetPercent = v })
		}
		if v, ok := pc.count(b.MinRetryConcurrency, 0, 1<<20, f+".budget.minRetryConcurrency"); ok {
			pc.route("retry.minRetryConcurrency", f+".budget.minRetryConcurrency", func(rt *ir.Route) { ensure(&rt.Retry).MinRetryConcurrency = v })
		}
	}
}

func (pc *policyCompiler) timeouts(t *v1alpha1.Timeouts) {
	if t == nil {
		return
	}
	const f = "spec.timeouts"
	if d, ok := pc.duration(t.Connect, f+".connect"); ok {
		pc.cluster("connectTimeout", f+".connect", func(c *ir.Cluster) { c.ConnectTimeout = d })
	}
	if d, ok := pc.duration(t.Idle, f+".idle"); ok {
		pc.cluster("idleTimeout", f+".idle", func(c *ir.Cluster) { c.IdleTimeout = d })
	}
	if d, ok := pc.duration(t.Request, f+".request"); ok {
		pc.route("timeouts.request", f+".request", func(r *ir.Route) { r.Timeouts.Request = d })
	}
}

func (pc *policyCompiler) fault(fi *v1alpha1.FaultInjection) {
	if fi == nil {
		return
	}
	const f = "spec.faultInjection"
	if fi.Delay == nil && fi.Abort == nil {
		pc.fail(f, "set delay, abort or both")
		return
	}
	if d := fi.Delay; d != nil {
		if d.FixedDelay.Duration <= 0 {
			pc.fail(f+".delay.fixedDelay", "fixedDelay must be positive")
			return
		}
		pct := 100
		if v, ok := pc.count(d.Percentage, 0, 100, f+".delay.percentage"); ok {
			pct = v
		}
		delay := dur(&d.FixedDelay)
		pc.route("fault.delay", f+".delay", func(r *ir.Route) {
			ft := ensure(&r.Fault)
			ft.Delay, ft.DelayPercent = delay, pct
		})
	}
	if a := fi.Abort; a != nil {
		if (a.HTTPStatus == nil) == (a.GRPCStatus == nil) {
			pc.fail(f+".abort", "exactly one of httpStatus and grpcStatus must be set")
			return
		}
		httpCode, _ := pc.count(a.HTTPStatus, 200, 599, f+".abort.httpStatus")
		grpcCode, _ := pc.count(a.GRPCStatus, 1, 16, f+".abort.grpcStatus")
		pct := 100
		if v, ok := pc.count(a.Percentage, 0, 100, f+".abort.percentage"); ok {
			pct = v
		}
		pc.route("fault.abort", f+".abort", func(r *ir.Route) {
			ft := ensure(&r.Fault)
			ft.AbortStatus, ft.AbortGRPCStatus, ft.AbortPercent = httpCode, grpcCode, pct
		})
	}
	if h := fi.HeaderMatch; h != nil {
		if !validHeaderName(h.Name) {
			pc.fail(f+".headerMatch.name", "%q is not a valid header name", h.Name)
			return
		}
		name := textproto.CanonicalMIMEHeaderKey(h.Name)
		value := ""
		if h.Value != nil {
			value = *h.Value
		}
		pc.route("fault.headerMatch", f+".headerMatch", func(r *ir.Route) {
			ft := ensure(&r.Fault)
			ft.Header, ft.HeaderValue = name, value
		})
	}
}
