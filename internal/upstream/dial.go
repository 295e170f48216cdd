package upstream

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// noRequest stands for the request of a connection-level pick: hash keys
// find nothing in it, so hash policies pick at random. Read only.
var noRequest = &http.Request{Header: http.Header{}, URL: &url.URL{}}

// DialContext connects to one endpoint of the cluster, chosen by its load
// balancer and health, for L4 routes (it implements l4.Dialer). It returns
// the connection and the endpoint's address. A connect failure tries one
// other endpoint; failures wrap ErrConnect and count as local-origin
// failures for outlier detection. The circuit breaker's MaxRequests caps
// the cluster's connections (ErrOverflow) until each is closed; hash
// policies pick at random, having no request to key on.
func (c *Cluster) DialContext(ctx context.Context) (net.Conn, string, error) {
	st := c.state.Load()
	b := st.breaker
	if !b.acquireRequest() {
		return nil, "", fmt.Errorf("cluster %s: %w: max requests", c.name, ErrOverflow)
	}
	mb, h, _ := st.choose(noRequest)
	if mb == nil {
		b.releaseRequest()
		return nil, "", fmt.Errorf("cluster %s: %w", c.name, ErrNoEndpoint)
	}
	nc, err := mb.ep.dial(ctx)
	st.observeDial(mb, err)
	if err != nil && ctx.Err() == nil && len(st.members) > 1 {
		if next := st.repick(mb, h); next != nil {
			mb = next
			nc, err = mb.ep.dial(ctx)
			st.observeDial(mb, err)
		}
	}
	if err != nil {
		b.releaseRequest()
		return nil, "", err
	}
	mb.active.Add(1)
	return &trackedConn{Conn: nc, tr: tracker{m: mb, b: b}}, mb.ep.addr, nil
}

// observeDial records a connection attempt for outlier detection: a
// connect failure, or a success that resets the local-origin count.
func (st *clusterState) observeDial(mb *member, err error) {
	if err == nil {
		if st.outlier != nil {
			reset(&mb.consLocal)
		}
		return
	}
	st.observe(mb, nil, err)
}

// DialPacket returns a UDP socket connected to one endpoint of the cluster
// (it implements l4.PacketDialer). UDP has no connection to fail, so
// neither outlier detection nor the circuit breaker apply; health checks
// and locality do.
func (c *Cluster) DialPacket(ctx context.Context) (net.Conn, string, error) {
	mb, _, _ := c.state.Load().choose(noRequest)
	if mb == nil {
		return nil, "", fmt.Errorf("cluster %s: %w", c.name, ErrNoEndpoint)
	}
	d := net.Dialer{Timeout: time.Duration(mb.ep.dialNs.Load())}
	nc, err := d.DialContext(ctx, "udp", mb.ep.addr)
	if err != nil {
		return nil, "", fmt.Errorf("upstream %s: %w: %w", mb.ep.addr, ErrConnect, err)
	}
	return nc, mb.ep.addr, nil
}

// trackedConn ends its accounting (least request, circuit breaker) when
// closed.
type trackedConn struct {
	net.Conn
	tr   tracker
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.tr.done)
	return err
}

// Unwrap returns the socket, so that a byte-stream proxy can copy between
// two TCP connections with splice(2) (net.TCPConn's ReadFrom only sees
// through its own types). Closing must still go through c.
func (c *trackedConn) Unwrap() net.Conn { return c.Conn }

// CloseWrite half-closes when the connection allows it, as proxies of
// byte streams need.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
