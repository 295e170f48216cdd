package h1

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// HTTP2 serves, with a net/http server, the connections that Server
// hands to its H2 (TLS, ALPN "h2") and H2C (prior knowledge) fields:
//
//	h2 := h1.NewHTTP2(&http.Server{Handler: handler})
//	srv := &h1.Server{Handler: handler, H2: h2.ServeConn, H2C: h2.ServeConn}
//
// and at shutdown both srv.Shutdown and h2.Shutdown (which sends GOAWAY).
type HTTP2 struct {
	srv *http.Server
	ln  *chanListener

	mu   sync.Mutex
	live map[net.Conn]*handed
}

// handed is one connection served by the net/http server.
type handed struct {
	once sync.Once
	done chan struct{}
}

func (h *handed) end() { h.once.Do(func() { close(h.done) }) }

// NewHTTP2 starts srv on an internal listener fed by ServeConn. srv's
// Protocols default to HTTP/2 and unencrypted HTTP/2 (nil); its TLSConfig
// must be nil (connections arrive with their handshake done), and its
// ConnState, if set, is still called.
func NewHTTP2(srv *http.Server) *HTTP2 {
	h := &HTTP2{
		srv:  srv,
		ln:   &chanListener{conns: make(chan net.Conn), closed: make(chan struct{})},
		live: map[net.Conn]*handed{},
	}
	if srv.Protocols == nil {
		p := new(http.Protocols)
		p.SetHTTP2(true)
		p.SetUnencryptedHTTP2(true)
		srv.Protocols = p
	}
	user := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		if user != nil {
			user(c, st)
		}
		if st == http.StateClosed || st == http.StateHijacked {
			h.mu.Lock()
			hd := h.live[c]
			h.mu.Unlock()
			if hd != nil {
				hd.end()
			}
		}
	}
	go func() { _ = srv.Serve(h.ln) }()
	return h
}

// ServeConn serves c with HTTP/2 and returns when it is closed.
func (h *HTTP2) ServeConn(c net.Conn) {
	hd := &handed{done: make(chan struct{})}
	key := c
	if _, isTLS := c.(interface{ Handshake() error }); !isTLS {
		// A plain connection can be wrapped, which tells its close
		// whatever net/http reports.
		key = &notifyConn{Conn: c, h: hd}
	}
	h.mu.Lock()
	h.live[key] = hd
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.live, key)
		h.mu.Unlock()
	}()
	select {
	case h.ln.conns <- key:
	case <-h.ln.closed:
		_ = c.Close()
		return
	}
	<-hd.done
}

// Shutdown shuts the net/http server down gracefully (GOAWAY), waiting
// for its connections until ctx ends.
func (h *HTTP2) Shutdown(ctx context.Context) error {
	err := h.srv.Shutdown(ctx)
	if err != nil {
		_ = h.srv.Close()
	}
	return err
}

// notifyConn reports its Close.
type notifyConn struct {
	net.Conn
	h *handed
}

func (n *notifyConn) Close() error {
	err := n.Conn.Close()
	n.h.end()
	return err
}

// chanListener accepts the connections sent on conns.
type chanListener struct {
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return handOffAddr{} }

type handOffAddr struct{}

func (handOffAddr) Network() string { return "h1-handoff" }
func (handOffAddr) String() string  { return "h1-handoff" }
