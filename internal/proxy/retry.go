package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/telemetry"
	"causeway.dev/causeway/internal/upstream"
)

// Retries (ir.Route.Retry). A request is retried only when its body can be
// replayed: none, or one of at most maxRetryBody bytes, read whole before
// the first attempt (through the bodyReader, so that limits, counters and
// mirrors see it as usual) and sent from memory on every attempt. Reading
// first rather than capturing while streaming is what makes a connect
// failure retriable too: upstream closes the request body of an attempt
// that never reached an endpoint.
//
// Each retry needs a slot of the route's cluster retry budget and of the
// cluster's circuit breaker (MaxRetries); without one, the failed answer
// stands. Waits between attempts are exponential with jitter, or follow
// Retry-After. The route's request timeout bounds all attempts together;
// PerTryTimeout bounds each until its response headers.

// maxRetryBody is the largest request body buffered for replay; a request
// with a larger body is sent once.
const maxRetryBody = 64 << 10

// maxDrain is how much of a failed attempt's response body is read so
// that its connection can be reused; beyond it the connection is closed.
const maxDrain = 64 << 10

// errPerTryTimeout is the cancel cause of a per-try timeout.
var errPerTryTimeout error = timeoutError("upstream per-try timeout")

// Retry condition bits, from ir.Retry.On.
const (
	on5xx uint16 = 1 << iota
	onGatewayError
	onReset
	onConnectFailure
	onStatusCodes
	onUnavailable
	onCancelled
	onDeadlineExceeded
	onResourceExhausted
)

var retryBits = map[string]uint16{
	ir.RetryOn5xx: on5xx, ir.RetryOnGatewayError: onGatewayError, ir.RetryOnReset: onReset,
	ir.RetryOnConnectFailure: onConnectFailure, ir.RetryOnStatusCodes: onStatusCodes,
	ir.RetryOnUnavailable: onUnavailable, ir.RetryOnCancelled: onCancelled,
	ir.RetryOnDeadlineExceeded: onDeadlineExceeded, ir.RetryOnResourceExhausted: onResourceExhausted,
}

// retryPolicy is a compiled ir.Retry.
type retryPolicy struct {
	attempts int
	perTry   time.Duration
	on       uint16
	codes    []int
	base     time.Duration
	max      time.Duration
	pct      int64
	minConc  int64
	counter  *telemetry.Counter
}

// retryBudget counts one cluster's requests and retries in flight through
// routes with retries. It is shared by every route to the cluster and kept
// across reloads (Proxy.budgets).
type retryBudget struct {
	active  atomic.Int64
	retries atomic.Int64
}

// budgetFor returns the shared budget of a cluster.
func (p *Proxy) budgetFor(cluster string) *retryBudget {
	if b, ok := p.budgets.Load(cluster); ok {
		return b.(*retryBudget)
	}
	b, _ := p.budgets.LoadOrStore(cluster, &retryBudget{})
	return b.(*retryBudget)
}

func compileRetry(p *Proxy, r *ir.Route, e *routeEntry) (*retryPolicy, error) {
	rt := r.Retry
	if rt == nil || rt.Attempts == 0 {
		return nil, nil
	}
	if rt.Attempts < 0 || rt.PerTryTimeout < 0 || rt.BackoffBase < 0 || rt.BackoffMax < 0 ||
		rt.BudgetPercent < 0 || rt.BudgetPercent > 100 || rt.MinRetryConcurrency < 0 {
		return nil, errors.New("retry: negative or out of range value")
	}
	rp := &retryPolicy{
		attempts: rt.Attempts,
		perTry:   time.Duration(rt.PerTryTimeout),
		codes:    rt.StatusCodes,
		base:     time.Duration(rt.BackoffBase),
		max:      time.Duration(rt.BackoffMax),
		pct:      int64(rt.BudgetPercent),
		minConc:  int64(rt.MinRetryConcurrency),
		counter:  p.opts.Metrics.Retries(e.gateway, e.name),
	}
	for _, c := range rt.On {
		b, ok := retryBits[c]
		if !ok {
			return nil, fmt.Errorf("retry: unknown condition %q", c)
		}
		rp.on |= b
	}
	if rp.base <= 0 {
		rp.base = 25 * time.Millisecond
	}
	if rp.max <= 0 {
		rp.max = 10 * rp.base
	}
	rp.max = max(rp.max, rp.base)
	return rp, nil
}

// resolveRetry points the backends of a route with retries at the
// budgets of their clusters.
func (p *Proxy) resolveRetry(e *routeEntry) {
	if e.retry == nil {
		return
	}
	for i := range e.backends {
		e.backends[i].budget = p.budgetFor(e.backends[i].cluster)
	}
}

// retryable tells whether an attempt's outcome calls for a retry.
// timedOut is true when the attempt's per-try timeout fired.
func (rp *retryPolicy) retryable(resp *http.Response, err error, timedOut bool) bool {
	if err != nil {
		switch {
		case timedOut:
			// No answer in time is a reset, as in Envoy's retry_on.
			return rp.on&(on5xx|onGatewayError|onReset) != 0
		case errors.Is(err, upstream.ErrOverflow), errors.Is(err, upstream.ErrNoEndpoint),
			errors.Is(err, errBodyTooLarge), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return false
		case errors.Is(err, upstream.ErrConnect):
			return rp.on&(onConnectFailure|on5xx|onGatewayError) != 0
		}
		return rp.on&(onReset|on5xx|onGatewayError) != 0
	}
	code := resp.StatusCode
	switch {
	case code >= 500 && rp.on&on5xx != 0:
		return true
	case (code == 502 || code == 503 || code == 504) && rp.on&onGatewayError != 0:
		return true
	case rp.on&onStatusCodes != 0:
		for _, c := range rp.codes {
			if c == code {
				return true
			}
		}
	}
	if rp.on&(onUnavailable|onCancelled|onDeadlineExceeded|onResourceExhausted) != 0 {
		// A trailers-only gRPC answer carries grpc-status in its headers.
		if v := resp.Header["Grpc-Status"]; len(v) > 0 {
			switch v[0] {
			case "14":
				return rp.on&onUnavailable != 0
			case "1":
				return rp.on&onCancelled != 0
			case "4":
				return rp.on&onDeadlineExceeded != 0
			case "8":
				return rp.on&onResourceExhausted != 0
			}
		}
	}
	return false
}

// backoff is the wait before retry n (1-based): a random time between
// base and min(max, base × 2^(n-1)), so never less than the base (Gateway
// API's backoff is a minimum). A Retry-After in resp replaces it, capped
// at max.
func (rp *retryPolicy) backoff(n int, resp *http.Response, now time.Time) time.Duration {
	if resp != nil {
		if d, ok := retryAfter(resp.Header, now); ok {
			return min(d, rp.max)
		}
	}
	ceil := rp.max
	if n-1 < 30 {
		ceil = min(rp.max, rp.base<<(n-1))
	}
	if ceil <= rp.base {
		return rp.base
	}
	return rp.base + time.Duration(rand.Int64N(int64(ceil-rp.base)+1))
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := h["Retry-After"]
	if len(v) == 0 || v[0] == "" {
		return 0, false
	}
	if s, err := strconv.ParseUint(v[0], 10, 32); err == nil {
		return time.Duration(s) * time.Second, true
	}
	t, err := http.ParseTime(v[0])
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// acquire reserves a retry: one of the budget's and one of the cluster
// breaker's. ok false means no retry may be made.
func (rp *retryPolicy) acquire(b *retryBudget, c *upstream.Cluster) (release func(), ok bool) {
	limit := max(rp.minConc, rp.pct*b.active.Load()/100)
	if b.retries.Add(1) > limit {
		b.retries.Add(-1)
		return nil, false
	}
	rel, ok := c.AcquireRetry()
	if !ok {
		b.retries.Add(-1)
		return nil, false
	}
	return func() { rel(); b.retries.Add(-1) }, true
}

// roundTripRetry sends out to be's cluster, retrying as the route's policy
// says. The per-try context of the answer returned stays live until
// x.endTry.
func (ls *listener) roundTripRetry(x *exchange, rp *retryPolicy, be *backendEntry, out *http.Request, body *bodyReader) (*http.Response, error) {
	b := be.budget
	b.active.Add(1)
	defer b.active.Add(-1)

	var buf []byte
	replay := true
	if body != nil {
		if out.ContentLength > maxRetryBody {
			replay = false
		} else {
			var err error
			var complete bool
			buf, complete, err = readUpTo(body, maxRetryBody)
			if err != nil {
				return nil, fmt.Errorf("reading request body: %w", err)
			}
			if complete {
				out.ContentLength = int64(len(buf))
			} else {
				replay = false
				out.Body = struct {
					io.Reader
					io.Closer
				}{io.MultiReader(bytes.NewReader(buf), body), body}
			}
		}
	}
	if !replay {
		return ls.attempt(x, rp, be, out)
	}
	parent := out.Context()
	var release func()
	for n := 0; ; n++ {
		if body != nil {
			out.Body = http.NoBody
			if len(buf) > 0 {
				out.Body = io.NopCloser(bytes.NewReader(buf))
			}
		}
		resp, err := ls.attempt(x, rp, be, out)
		if release != nil {
			release()
			release = nil
		}
		if !rp.retryable(resp, err, errors.Is(err, errPerTryTimeout)) || parent.Err() != nil {
			return resp, err
		}
		if n >= rp.attempts {
			x.urx = true
			return resp, err
		}
		rel, ok := rp.acquire(b, be.c)
		if !ok {
			return resp, err
		}
		wait := rp.backoff(n+1, resp, time.Now())
		if resp != nil {
			_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
			_ = resp.Body.Close()
		}
		x.endTry()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-parent.Done():
			t.Stop()
			rel()
			return nil, context.Cause(parent)
		}
		x.retries++
		rp.counter.Inc()
		release = rel
	}
}

// attempt is one round trip, bounded by the per-try timeout. On success
// the attempt's context is left to x.endTry.
func (ls *listener) attempt(x *exchange, rp *retryPolicy, be *backendEntry, req *http.Request) (*http.Response, error) {
	if rp.perTry <= 0 {
		return be.c.RoundTrip(req)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	t := time.AfterFunc(rp.perTry, func() { cancel(errPerTryTimeout) })
	resp, err := be.c.RoundTrip(req.WithContext(ctx))
	fired := !t.Stop()
	if fired && context.Cause(ctx) == errPerTryTimeout {
		if resp != nil {
			_ = resp.Body.Close()
		}
		cancel(nil)
		return nil, fmt.Errorf("%w: %w", errPerTryTimeout, context.DeadlineExceeded)
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	x.tryCancel = cancel
	return resp, nil
}

// endTry releases the context of the last attempt.
func (x *exchange) endTry() {
	if x.tryCancel != nil {
		x.tryCancel(nil)
		x.tryCancel = nil
	}
}

// readUpTo reads r to its end if that is at most limit bytes; complete is
// false (and buf holds what was read, limit+1 bytes at most) otherwise.
func readUpTo(r io.Reader, limit int) (buf []byte, complete bool, err error) {
	buf = make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return buf, false, nil
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), limit+1)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, len(buf) <= limit, nil
		}
		if err != nil {
			return buf, false, err
		}
		if len(buf) > limit {
			return buf, false, nil
		}
	}
}

// retryFlag adds URX to the access log flags when retries ran out.
func (x *exchange) retryFlag() {
	if !x.urx {
		return
	}
	if x.flags == "" {
		x.flags = "URX"
	} else {
		x.flags += ",URX"
	}
}
