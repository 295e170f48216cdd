package upstream

import (
	"context"
	"errors"
	"sync/atomic"

	"causeway.dev/causeway/internal/ir"
)

// ErrOverflow means a circuit breaker limit of the cluster was reached
// (503, flag UO); returned errors wrap it.
var ErrOverflow = errors.New("circuit breaker overflow")

// breaker enforces a cluster's ir.CircuitBreaker. Its counters live as
// long as its limits: a reload that changes them starts a new breaker, and
// requests in flight release to the one they took.
//
// The limits, as applied here:
//   - MaxRequests caps requests in flight (from the pick until the
//     response body ends), including those waiting for a connection;
//     the next one fails at once with ErrOverflow.
//   - MaxConnections (HTTP/1.1 clusters) caps connections in use by the
//     cluster's requests, one per request in this client; idle pooled
//     connections do not count (MaxIdlePerEndpoint bounds those). A
//     request beyond it waits, pending, for one to be released, until its
//     context ends. HTTP/2 clusters multiplex requests over a few
//     connections per endpoint (another opens when one is full): use
//     MaxRequests there.
//   - MaxPendingRequests caps those waiting; beyond it, ErrOverflow.
//     It has no effect without MaxConnections.
//   - MaxRetries caps retries in flight, taken by the proxy through
//     Cluster.AcquireRetry.
//
// Zero limits are unlimited and cost nothing per request.
type breaker struct {
	maxReqs, maxPending, maxRetries int64
	reqs, pending, retries          atomic.Int64
	conns                           chan struct{} // semaphore; nil without MaxConnections
	releaseRetry                    func()        // kept so AcquireRetry does not allocate
}

func newBreaker(cb ir.CircuitBreaker) *breaker {
	b := &breaker{
		maxReqs:    int64(max(cb.MaxRequests, 0)),
		maxPending: int64(max(cb.MaxPendingRequests, 0)),
		maxRetries: int64(max(cb.MaxRetries, 0)),
	}
	if cb.MaxConnections > 0 {
		b.conns = make(chan struct{}, cb.MaxConnections)
	}
	b.releaseRetry = func() { b.retries.Add(-1) }
	return b
}

func (b *breaker) acquireRequest() bool {
	if b.maxReqs == 0 {
		return true
	}
	if b.reqs.Add(1) > b.maxReqs {
		b.reqs.Add(-1)
		return false
	}
	return true
}

func (b *breaker) releaseRequest() {
	if b.maxReqs != 0 {
		b.reqs.Add(-1)
	}
}

// acquireConn takes a connection slot, waiting (as a pending request) for
// one when all are in use. ok reports that a slot was taken and must be
// released.
func (b *breaker) acquireConn(ctx context.Context) (ok bool, err error) {
	if b.conns == nil {
		return false, nil
	}
	select {
	case b.conns <- struct{}{}:
		return true, nil
	default:
	}
	n := b.pending.Add(1)
	defer b.pending.Add(-1)
	if b.maxPending > 0 && n > b.maxPending {
		return false, errOverflowPending
	}
	select {
	case b.conns <- struct{}{}:
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

var errOverflowPending = &overflowError{"max pending requests"}

// overflowError names the limit that overflowed.
type overflowError struct{ limit string }

func (e *overflowError) Error() string { return ErrOverflow.Error() + ": " + e.limit }
func (e *overflowError) Unwrap() error { return ErrOverflow }

// release ends a request's hold on the breaker.
func (b *breaker) release(conn bool) {
	if conn {
		<-b.conns
	}
	b.releaseRequest()
}

func noop() {}

// AcquireRetry reserves one of the cluster's concurrent retries
// (CircuitBreaker.MaxRetries) for the proxy's retry policy: ok false means
// the limit is reached and the retry must not be made (answer as the
// previous attempt did, or 503 flag UO). When ok, release must be called
// exactly once, when the retry attempt is over. Without a limit ok is
// always true. It does not allocate.
func (c *Cluster) AcquireRetry() (release func(), ok bool) {
	b := c.state.Load().breaker
	if b.maxRetries == 0 {
		return noop, true
	}
	if b.retries.Add(1) > b.maxRetries {
		b.retries.Add(-1)
		return noop, false
	}
	return b.releaseRetry, true
}
