package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// HTTP/2 upstreams (h2c with prior knowledge, or h2 over TLS by ALPN) go
// through a client of this package (h2conn.go, h2stream.go) rather than
// net/http's: per connection one goroutine reads frames and hands them to
// streams; the caller's goroutine writes a request's HEADERS, and DATA
// with END_STREAM when the body is small and complete, in one write. Only
// a streaming body gets a goroutine of its own, to write while the caller
// reads the response.

// h2MaxRefused bounds the attempts of a request the server refuses.
const h2MaxRefused = 5

// h2Transport is an endpoint's pool of HTTP/2 connections. Requests share
// a connection up to the server's SETTINGS_MAX_CONCURRENT_STREAMS; beyond
// it another connection is dialled.
type h2Transport struct {
	e    *endpoint
	idle time.Duration // 0: the endpoint's idle timeout, as it changes

	mu      sync.Mutex
	conns   []*h2Conn
	dialing *h2Dial     // a dial under way, which other requests wait for
	closed  atomic.Bool // CloseIdleConnections was called: close connections once idle
}

// h2Dial is a dial other requests wait for instead of dialling too.
type h2Dial struct {
	done chan struct{}
	err  error
}

// newH2CTransport returns the HTTP/2 client of e (TLS with ALPN h2 when e
// has TLS, else h2c with prior knowledge). idle closes connections idle
// that long; 0 follows the endpoint's idle timeout.
func newH2CTransport(e *endpoint, idle time.Duration) *h2Transport {
	return &h2Transport{e: e, idle: idle}
}

func (t *h2Transport) idleTimeout() time.Duration {
	if t.idle > 0 {
		return t.idle
	}
	return t.e.idleTimeout()
}

// RoundTrip implements http.RoundTripper (for gRPC health checks).
func (t *h2Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, untouched, err := t.roundTrip(req)
	if err != nil && untouched {
		closeBody(req.Body)
	}
	return resp, err
}

// CloseIdleConnections closes the connections without streams; the others
// close when their last stream ends.
func (t *h2Transport) CloseIdleConnections() {
	t.closed.Store(true)
	t.mu.Lock()
	conns := append([]*h2Conn(nil), t.conns...)
	t.mu.Unlock()
	for _, c := range conns {
		c.closeIfIdle()
	}
}

// remove drops c from the pool: it takes no new streams.
func (t *h2Transport) remove(c *h2Conn) {
	t.mu.Lock()
	for i, x := range t.conns {
		if x == c {
			last := len(t.conns) - 1
			t.conns[i] = t.conns[last]
			t.conns[last] = nil
			t.conns = t.conns[:last]
			break
		}
	}
	t.mu.Unlock()
}

// getConn reserves a stream on a pooled connection, dialling one when none
// has room. Concurrent requests wait for a dial under way rather than each
// dialling its own.
func (t *h2Transport) getConn(ctx context.Context) (*h2Conn, error) {
	for {
		t.mu.Lock()
		for _, c := range t.conns {
			if c.reserve() {
				t.mu.Unlock()
				return c, nil
			}
		}
		d := t.dialing
		if d == nil {
			d = &h2Dial{done: make(chan struct{})}
			t.dialing = d
			t.mu.Unlock()
			c, err := t.dial(ctx)
			t.mu.Lock()
			t.dialing = nil
			if err == nil {
				t.conns = append(t.conns, c)
			}
			d.err = err
			t.mu.Unlock()
			close(d.done)
			if err != nil {
				return nil, err
			}
			continue
		}
		t.mu.Unlock()
		select {
		case <-d.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("upstream %s: %w", t.e.addr, ctx.Err())
		}
		if d.err != nil && errors.Is(d.err, ErrConnect) {
			return nil, d.err // the endpoint refuses: no point dialling again
		}
	}
}

func (t *h2Transport) dial(ctx context.Context) (*h2Conn, error) {
	nc, err := t.e.dial(ctx)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*tls.Conn); ok {
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			nc.Close()
			return nil, fmt.Errorf("upstream %s: %w: server did not negotiate h2 (ALPN %q)", t.e.addr, ErrConnect, p)
		}
	}
	c, err := newH2Conn(t, nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("upstream %s: %w: %w", t.e.addr, ErrConnect, err)
	}
	return c, nil
}

// roundTripH2C sends req over e's HTTP/2 pool. untouched reports that
// req.Body is unread and still open (a connect failure before anything
// was sent): the request may go to another endpoint. Otherwise req.Body is
// closed.
func (e *endpoint) roundTripH2C(req *http.Request) (*http.Response, bool, error) {
	return e.h2.roundTrip(req)
}

func (t *h2Transport) roundTrip(req *http.Request) (*http.Response, bool, error) {
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return nil, true, fmt.Errorf("upstream %s: %w", t.e.addr, err)
	}
	o := h2Out{req: req, body: req.Body, n: req.ContentLength}
	switch {
	case o.body == nil || o.body == http.NoBody:
		o.body, o.n = nil, 0
	case o.n == 0: // as in net/http: a body with length 0 is of unknown length
		o.n = -1
	}
	o.host = req.Host
	if o.host == "" && req.URL != nil {
		o.host = req.URL.Host
	}
	if o.host == "" {
		o.host = t.e.host
	}
	o.scheme = "http"
	if t.e.tls != nil {
		o.scheme = "https"
	}
	for attempt := 0; ; attempt++ {
		c, err := t.getConn(ctx)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
				err = fmt.Errorf("upstream %s: %w: %w", t.e.addr, cerr, err)
			}
			if !o.buffered && !o.streamed { // the body is unread and open
				return nil, errors.Is(err, ErrConnect), err
			}
			return nil, false, err
		}
		resp, err := c.roundTrip(&o)
		if err == nil {
			return resp, false, nil
		}
		// A stream the server did not process (GOAWAY past it, or
		// REFUSED_STREAM) is sent again when the body is still to be had:
		// none, or held in memory. A server refuses a stream it still
		// counts against its limit for a moment after the client saw it
		// end: later attempts back off a little.
		// A connection lost before any response (a server closing it as
		// the request went out) is retried only for idempotent requests
		// without a body, as net/http does.
		retry := errors.Is(err, errH2Refused) && !o.streamed ||
			errors.Is(err, errH2Lost) && o.body == nil && idempotent(req.Method)
		if retry && attempt < h2MaxRefused && ctx.Err() == nil {
			if attempt > 0 {
				tm := time.NewTimer(time.Duration(attempt) * time.Millisecond)
				select {
				case <-tm.C:
				case <-ctx.Done():
				}
				tm.Stop()
			}
			continue
		}
		if !o.buffered && !o.streamed {
			closeBody(o.body)
		}
		return nil, false, fmt.Errorf("upstream %s: %w", t.e.addr, err)
	}
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}
