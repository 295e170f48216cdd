package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"

	"causeway.dev/causeway/internal/ir"
)

// outlierConfig is a cluster's ir.OutlierDetection with defaults applied.
//
// How outcomes count: every attempt's outcome is recorded on its endpoint
// with atomics. A response resets the local-origin count; a 5xx counts
// toward Consecutive5xx, a 502/503/504 also toward
// ConsecutiveGatewayErrors, anything else resets both. A local-origin
// failure (connect error or timeout, reset, connection closed before the
// response, upstream timeout) counts toward all three, as the proxy would
// answer it 502/503/504. A client that went away, or a request body that
// failed to read, counts for nothing.
//
// Ejection: when a count reaches its limit the endpoint is ejected for
// BaseEjectionTime × times ejected (capped at max(BaseEjectionTime, 300s)),
// unless MaxEjectionPercent of the endpoints (at least one) already are.
// It returns when that time is over. The times-ejected count decreases by
// one every Interval the endpoint stays in.
type outlierConfig struct {
	cons5xx, consGW, consLocal int32
	base, interval             time.Duration
	maxPercent                 int
}

// maxEjection caps the growing ejection time.
const maxEjection = 300 * time.Second

func newOutlierConfig(od *ir.OutlierDetection) *outlierConfig {
	if od == nil {
		return nil
	}
	o := &outlierConfig{
		cons5xx:    int32(max(od.Consecutive5xx, 0)),
		consGW:     int32(max(od.ConsecutiveGatewayErrors, 0)),
		consLocal:  int32(max(od.ConsecutiveLocalOriginFailures, 0)),
		base:       time.Duration(od.BaseEjectionTime),
		interval:   time.Duration(od.Interval),
		maxPercent: od.MaxEjectionPercent,
	}
	if o.base <= 0 {
		o.base = 30 * time.Second
	}
	if o.interval <= 0 {
		o.interval = 10 * time.Second
	}
	if o.maxPercent <= 0 {
		o.maxPercent = 10
	}
	return o
}

// outlierInterval is the decay period. c.mu held.
func (c *Cluster) outlierInterval() time.Duration {
	if c.outlier == nil {
		return 10 * time.Second
	}
	return c.outlier.interval
}

// observe records the outcome of one attempt on mb. Request path: atomics
// only, unless a limit is reached.
func (st *clusterState) observe(mb *member, resp *http.Response, err error) {
	o := st.outlier
	if o == nil {
		return
	}
	var fire bool
	switch {
	case err != nil:
		if !localFailure(err) {
			return
		}
		fire = bump(&mb.consLocal, o.consLocal)
		fire = bump(&mb.cons5xx, o.cons5xx) || fire
		fire = bump(&mb.consGW, o.consGW) || fire
	case resp.StatusCode >= 500:
		reset(&mb.consLocal)
		fire = bump(&mb.cons5xx, o.cons5xx)
		switch resp.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			fire = bump(&mb.consGW, o.consGW) || fire
		default:
			reset(&mb.consGW)
		}
	default:
		reset(&mb.consLocal)
		reset(&mb.cons5xx)
		reset(&mb.consGW)
	}
	if fire {
		mb.c.eject(mb)
	}
}

// bump counts one failure; true when the limit (if any) is reached.
func bump(n *atomic.Int32, limit int32) bool {
	if limit <= 0 {
		return false
	}
	return n.Add(1) >= limit
}

// reset zeroes a count, writing only when needed to keep the cache line
// shared.
func reset(n *atomic.Int32) {
	if n.Load() != 0 {
		n.Store(0)
	}
}

// timeoutCause turns a cancellation whose cause is a timeout (the proxy's
// per-try and route timers cancel with such a cause, so that a response
// body may outlive them) into context.DeadlineExceeded: the endpoint was too
// slow, which outlier detection must count, unlike a client going away.
func timeoutCause(ctx context.Context, err error) error {
	if err == nil || !errors.Is(err, context.Canceled) {
		return err
	}
	var t interface{ Timeout() bool }
	if errors.As(context.Cause(ctx), &t) && t.Timeout() {
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, context.Cause(ctx))
	}
	return err
}

// localFailure tells failures of the endpoint or the path to it from
// failures of the client's side.
func localFailure(err error) bool {
	var be bodyReadError
	switch {
	case errors.Is(err, context.Canceled), errors.As(err, &be):
		return false
	case errors.Is(err, ErrConnect), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// eject takes mb out of the traffic if the limits allow it.
func (c *Cluster) eject(mb *member) {
	c.mu.Lock()
	o := c.outlier
	if c.stopped || o == nil || mb.ejected || !c.has(mb) {
		c.mu.Unlock()
		return
	}
	reset(&mb.cons5xx)
	reset(&mb.consGW)
	reset(&mb.consLocal)
	ejected := 0
	for _, x := range c.members {
		if x.ejected {
			ejected++
		}
	}
	if ejected+1 > max(1, len(c.members)*o.maxPercent/100) {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	mb.ejections++
	mb.ejectedTotal++
	mb.ejected = true
	d := min(o.base*time.Duration(mb.ejections), max(o.base, maxEjection))
	mb.until = now.Add(d)
	mb.decayAt = mb.until.Add(o.interval)
	times := mb.ejections
	c.rebuildLocked(now)
	c.armLocked(now)
	c.mu.Unlock()
	c.m.opts.Logger.Info("upstream endpoint ejected", "cluster", c.name, "endpoint", mb.ep.addr,
		"duration", d, "times", times)
	if f := c.m.opts.OnEndpointEvent; f != nil {
		f(c.name, mb.ep.addr, EventEjected)
	}
}
