package proxy

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"causeway.dev/causeway/internal/certs"
	"causeway.dev/causeway/internal/h1"
	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/l4"
	"causeway.dev/causeway/internal/telemetry"
)

// listener is one bound socket and the HTTP server on it: internal/h1 for
// HTTP/1.1, handing HTTP/2 (ALPN h2, or the h2c preface) to net/http. Its graph and its
// certificates are swapped by Apply; the socket and the connections stay.
type listener struct {
	p     *Proxy
	name  string
	key   string // what must not change for the socket to be kept
	tls   bool
	ln    *limitListener
	srv   *h1.Server
	h2    *h1.HTTP2
	stats *telemetry.ListenerStats
	graph atomic.Pointer[graph]
	certs atomic.Pointer[certSet]
	done  chan struct{}            // closed when Serve has returned
	h3    atomic.Pointer[h3Server] // HTTP/3 twin socket (h3.go); nil when off

	// settings of the server (tlsconfig.go), fixed for the socket's life.
	settings listenerSettings

	// TLS, TCP and UDP listeners (l4.go): l4 serves l4ln or l4pc; ln and
	// srv are nil.
	l4   *l4.Server
	l4ln net.Listener
	l4pc *net.UDPConn
}

// listenerKey identifies a socket: same name, protocol, address, port and
// server settings.
func listenerKey(l *ir.Listener) string {
	return l.Name + "|" + string(l.Protocol) + "|" + net.JoinHostPort(l.Address, strconv.Itoa(l.Port)) + "|" + settingsKey(l.Settings)
}

// bind opens the socket of l; serving starts with start once a graph is set.
func (p *Proxy) bind(l *ir.Listener) (*listener, error) {
	if isL4(l.Protocol) {
		return p.bindL4(l)
	}
	addr := net.JoinHostPort(l.Address, strconv.Itoa(l.Port))
	nl, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	st := p.settings(l)
	ls := &listener{
		p:        p,
		name:     l.Name,
		key:      listenerKey(l),
		tls:      l.Protocol == ir.ProtocolHTTPS,
		ln:       newLimitListener(nl, st.maxConnections),
		stats:    p.opts.Metrics.Listener(l.Name),
		done:     make(chan struct{}),
		settings: st,
	}
	// HTTP/2 connections are handed over by h1, which keeps reporting
	// their state (and so holds their slot in the limit) until they end;
	// hence no ConnState here.
	ls.h2 = h1.NewHTTP2(&http.Server{
		Handler:           ls,
		MaxHeaderBytes:    st.maxHeaderBytes,
		ReadHeaderTimeout: st.readHeaderTimeout,
		IdleTimeout:       st.idleTimeout,
		HTTP2:             st.http2,
		// A misbehaving client is not worth more than a debug line.
		ErrorLog: slog.NewLogLogger(p.opts.Logger.Handler(), slog.LevelDebug),
	})
	ls.srv = &h1.Server{
		Handler:           ls,
		MaxHeaderBytes:    st.maxHeaderBytes,
		ReadHeaderTimeout: st.readHeaderTimeout,
		IdleTimeout:       st.idleTimeout,
		ConnState:         ls.connState,
		ErrorLog:          p.opts.Logger,
	}
	if ls.tls {
		ls.srv.H2 = ls.h2.ServeConn
	} else {
		ls.srv.H2C = ls.h2.ServeConn
	}
	return ls, nil
}

// start serves the socket in a goroutine that ends when the server stops.
func (ls *listener) start() {
	if ls.l4 != nil {
		ls.startL4()
		return
	}
	var nl net.Listener = ls.ln
	if ls.tls {
		nl = tls.NewListener(nl, ls.socketTLSConfig())
	}
	go func() {
		defer close(ls.done)
		err := ls.srv.Serve(nl)
		if err != nil && !errors.Is(err, h1.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			ls.p.opts.Logger.Error("listener stopped", "listener", ls.name, "err", err)
		}
	}()
}

// connState counts connections and frees their slot in the limit. A
// hijacked connection (an upgrade) leaves the count: the proxy tracks it
// on its own from there.
func (ls *listener) connState(c net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		ls.stats.ConnOpened()
	case http.StateClosed, http.StateHijacked:
		ls.stats.ConnClosed()
		ls.ln.release()
	}
}

// limitListener bounds the connections being served: Accept waits while
// max connections are open. A slot is taken before Accept and given back
// by release when the server reports the connection closed or hijacked.
type limitListener struct {
	net.Listener
	sem       chan struct{}
	closing   chan struct{}
	closeOnce sync.Once
}

func newLimitListener(l net.Listener, max int) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, max), closing: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.closing:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		l.release()
		return nil, err
	}
	return c, nil
}

func (l *limitListener) release() { <-l.sem }

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.closing) })
	return l.Listener.Close()
}

// certSet is the server certificates of one HTTPS listener, indexed by SNI,
// with the tls.Config every handshake gets (tlsconfig.go).
type certSet struct {
	*certs.Set
	conf *tls.Config
}

// compileCerts parses the certificates of a listener.
func compileCerts(t *ir.TLS) (*certSet, error) {
	if t == nil {
		return nil, errors.New("HTTPS listener without certificates")
	}
	s, err := certs.Compile(t.Certificates)
	if errors.Is(err, certs.ErrNone) {
		return nil, errors.New("HTTPS listener without certificates")
	}
	if err != nil {
		return nil, err
	}
	cs := &certSet{Set: s}
	if cs.conf, err = serverTLSConfig(t, cs); err != nil {
		return nil, err
	}
	return cs, nil
}

// Addr returns the bound address.
func (ls *listener) addr() net.Addr {
	if ls.l4 != nil {
		return ls.l4Addr()
	}
	return ls.ln.Addr()
}
