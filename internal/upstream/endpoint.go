package upstream

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"causeway.dev/causeway/internal/ir"
)

// endpoint is one destination address with its idle HTTP/1.1 connections
// (or, for h2c, its HTTP/2 connections). Endpoints are shared by all
// clusters naming the same address and protocol, which is what lets pools
// survive a reload.
type endpoint struct {
	m       *Manager
	network string // "tcp" or "unix"
	addr    string
	host    string       // Host header when the request carries none
	h2      *h2Transport // h2c endpoints only (h2c.go)
	tls     *tlsClient   // nil: plaintext (tls.go)
	noBody  *emptyBody   // the Body of its responses without one

	// Timeouts of the clusters using the endpoint (the smallest wins when
	// several share it), in nanoseconds; set under Manager.mu.
	dialNs, idleNs atomic.Int64

	mu     sync.Mutex
	idle   []*conn // LIFO; ordered oldest first
	closed bool    // no longer part of the configuration: stop pooling

	stamp uint64 // Manager.gen of the last setTimeouts; under Manager.mu
}

func newEndpoint(m *Manager, k epKey, idle time.Duration, tc *tlsClient) *endpoint {
	e := &endpoint{m: m, network: k.network, addr: k.addr, host: k.addr, tls: tc}
	e.noBody = &emptyBody{addr: k.addr}
	if k.network == "unix" {
		e.host = "localhost"
	}
	e.dialNs.Store(int64(m.opts.DialTimeout))
	e.idleNs.Store(int64(cmp.Or(idle, m.opts.IdleTimeout)))
	if k.proto == ir.UpstreamH2C {
		e.h2 = newH2CTransport(e, 0)
	}
	return e
}

// setTimeouts applies a cluster's connect and idle timeouts (zero: the
// Manager's). Endpoints shared by clusters keep the smallest of a reload;
// m.mu must be held.
func (e *endpoint) setTimeouts(dial, idle time.Duration) {
	dial = cmp.Or(dial, e.m.opts.DialTimeout)
	idle = cmp.Or(idle, e.m.opts.IdleTimeout)
	if e.stamp != e.m.gen {
		e.stamp = e.m.gen
		e.dialNs.Store(int64(dial))
		e.idleNs.Store(int64(idle))
		return
	}
	e.dialNs.Store(min(e.dialNs.Load(), int64(dial)))
	e.idleNs.Store(min(e.idleNs.Load(), int64(idle)))
}

func (e *endpoint) idleTimeout() time.Duration { return time.Duration(e.idleNs.Load()) }

// roundTrip sends req over this endpoint. untouched reports a failure to
// connect before anything was sent: req.Body is then unread and still open
// and the request may go to another endpoint. Otherwise req.Body is closed.
func (e *endpoint) roundTrip(req *http.Request) (resp *http.Response, untouched bool, err error) {
	if e.h2 != nil {
		return e.roundTripH2C(req)
	}
	return e.roundTripH1(req)
}

// get takes the most recently used idle connection, nil when none.
func (e *endpoint) get() *conn {
	e.mu.Lock()
	n := len(e.idle)
	if n == 0 {
		e.mu.Unlock()
		return nil
	}
	c := e.idle[n-1]
	e.idle[n-1] = nil
	e.idle = e.idle[:n-1]
	e.mu.Unlock()
	return c
}

// put returns a connection whose last response ended cleanly.
func (e *endpoint) put(c *conn) {
	if c.br.Buffered() > 0 { // bytes nobody asked for: the stream is out of step
		c.nc.Close()
		return
	}
	c.idleAt = time.Now()
	e.mu.Lock()
	if e.closed || len(e.idle) >= e.m.opts.MaxIdlePerEndpoint {
		e.mu.Unlock()
		c.nc.Close()
		return
	}
	e.idle = append(e.idle, c)
	e.mu.Unlock()
}

// prune closes the connections idle since before cutoff.
func (e *endpoint) prune(cutoff time.Time) {
	e.mu.Lock()
	i := 0
	for i < len(e.idle) && e.idle[i].idleAt.Before(cutoff) {
		i++
	}
	if i == 0 {
		e.mu.Unlock()
		return
	}
	old := make([]*conn, i)
	copy(old, e.idle)
	n := copy(e.idle, e.idle[i:])
	clear(e.idle[n:])
	e.idle = e.idle[:n]
	e.mu.Unlock()
	for _, c := range old {
		c.nc.Close()
	}
}

// close closes the idle connections; connections in use are closed when
// their request ends.
func (e *endpoint) close() {
	e.mu.Lock()
	e.closed = true
	idle := e.idle
	e.idle = nil
	e.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
	if e.h2 != nil {
		e.h2.CloseIdleConnections()
	}
}

// dial opens a connection, with the TLS handshake done when the endpoint
// has TLS (the result is then a *tls.Conn); failures other than ctx's wrap
// ErrConnect.
func (e *endpoint) dial(ctx context.Context) (net.Conn, error) {
	timeout := time.Duration(e.dialNs.Load())
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, e.network, e.addr)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("upstream %s: %w: %w", e.addr, cerr, err)
		}
		return nil, fmt.Errorf("upstream %s: %w: %w", e.addr, ErrConnect, err)
	}
	if e.tls != nil {
		return e.tls.handshake(ctx, nc, e.addr, timeout)
	}
	return nc, nil
}

// newConn dials a fresh HTTP/1.1 connection.
func (e *endpoint) newConn(ctx context.Context) (*conn, error) {
	nc, err := e.dial(ctx)
	if err != nil {
		return nil, err
	}
	c := &conn{nc: nc, ep: e}
	c.br = bufio.NewReaderSize(connReader{c}, 4<<10)
	c.bw = bufio.NewWriterSize(nc, 4<<10)
	c.poke = c.expire
	return c, nil
}
