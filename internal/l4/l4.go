// Package l4 is the data plane of TLS, TCP and UDP listeners, beside the
// HTTP one in internal/proxy: the proxy compiles each such ir.Listener into
// a Table (routes chosen by SNI for TLS, the first route for TCP and UDP,
// weighted backends) and hands it with the listener's socket to a Server,
// which forwards whole connections or datagram sessions to the clusters of
// internal/upstream through the Dialer interface.
//
// A TLS connection's ClientHello is always peeked (parsed here, bounded to
// 16 KiB) and its SNI chooses the route. A passthrough route replays the
// ClientHello to the backend, so the client talks TLS with the backend
// itself; a terminating route hands the connection, ClientHello replayed
// first, to crypto/tls with the listener's certificate for the SNI and
// forwards the plaintext. Both kinds may share a listener (Gateway API
// TLSRouteModeMixed). Bytes are copied with the concrete connection types
// so that Go uses splice(2) between TCP sockets.
//
// Concurrency: Swap, Serve, ServePacket and Shutdown may be called from any
// goroutine. A connection loads the current Table once, with one atomic
// load, when it is accepted; a Swap never changes a connection in flight.
package l4

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"causeway.dev/causeway/internal/ir"
)

// Dialer connects to one endpoint of a cluster, chosen by the cluster's
// load balancer. It returns the connection and the endpoint's address (for
// logs). It must be safe for concurrent use. *upstream.Cluster implements
// it.
type Dialer interface {
	DialContext(ctx context.Context) (net.Conn, string, error)
}

// PacketDialer is what a UDP listener needs of a cluster: a connected UDP
// socket to one endpoint, as net.Dial("udp", addr) returns.
type PacketDialer interface {
	DialPacket(ctx context.Context) (net.Conn, string, error)
}

// Options configure a Server. The zero value is ready to use.
type Options struct {
	// Logger; nil: slog.Default().
	Logger *slog.Logger
	// MaxConnections bounds the TCP and TLS connections served at once;
	// Accept waits beyond it. 0: 10000.
	MaxConnections int
	// MaxSessions bounds the UDP sessions; datagrams from new clients
	// beyond it are dropped. 0: 10000.
	MaxSessions int
	// HandshakeTimeout bounds reading the ClientHello (passthrough) or it
	// and the whole TLS handshake (terminate). 0: 10s.
	HandshakeTimeout time.Duration
	// ConnectTimeout bounds dialling a backend. 0: 10s (a Dialer may
	// apply a shorter bound of its own).
	ConnectTimeout time.Duration
}

// Server serves one L4 listener socket. Create it with New, give it a
// Table with Swap, then call Serve (TCP, TLS) or ServePacket (UDP).
type Server struct {
	opts  Options
	table atomic.Pointer[Table]
	sem   chan struct{}

	closing chan struct{} // closed by Shutdown

	mu     sync.Mutex
	closed bool
	forced bool // Shutdown's context ended: connections are cut
	lns    []net.Listener
	pcs    []*net.UDPConn
	conns  map[*pair]struct{}
	udps   map[*udpServer]struct{}
	wg     sync.WaitGroup // connections and packet loops

	bufs sync.Pool // *[]byte of maxPeek, for ClientHellos
}

// ErrServerClosed is returned by Serve and ServePacket after Shutdown.
var ErrServerClosed = errors.New("l4: server closed")

// New returns a Server with no Table: until the first Swap, connections
// are refused.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = 10000
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = 10000
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 10 * time.Second
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	s := &Server{
		opts:    opts,
		sem:     make(chan struct{}, opts.MaxConnections),
		closing: make(chan struct{}),
		conns:   map[*pair]struct{}{},
		udps:    map[*udpServer]struct{}{},
	}
	s.bufs.New = func() any { b := make([]byte, maxPeek); return &b }
	return s
}

// Swap installs t (compiled and resolved) for the connections accepted
// from now on.
func (s *Server) Swap(t *Table) { s.table.Store(t) }

// Serve accepts connections on ln until Shutdown or an accept error, and
// forwards each by the current Table. It returns ErrServerClosed after
// Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	var tempDelay time.Duration
	for {
		select {
		case s.sem <- struct{}{}:
		case <-s.closing:
			return ErrServerClosed
		}
		c, err := ln.Accept()
		if err != nil {
			<-s.sem
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				time.Sleep(tempDelay)
				continue
			}
			return err
		}
		tempDelay = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.sem }()
			s.serveConn(c)
		}()
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// serveConn chooses the route and backend of one connection and forwards
// it. Refusals close the connection: there is no way to answer at L4.
func (s *Server) serveConn(c net.Conn) {
	t := s.table.Load()
	if t == nil {
		_ = c.Close()
		return
	}
	log := s.opts.Logger
	var (
		client = c
		replay []byte
		sni    string
		bufp   *[]byte
	)
	if t.proto == ir.ProtocolTLS {
		bufp = s.bufs.Get().(*[]byte)
		defer func() {
			if bufp != nil { // not yet given back below
				s.bufs.Put(bufp)
			}
		}()
		// One deadline bounds the ClientHello and, when terminating, the
		// whole handshake.
		err := c.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
		if err == nil {
			replay, sni, err = readHello(c, *bufp)
		}
		if err != nil {
			log.Debug("l4: no ClientHello", "remote", c.RemoteAddr(), "err", err)
			_ = c.Close()
			return
		}
	}
	r := t.match(sni)
	if r == nil {
		log.Debug("l4: no route", "remote", c.RemoteAddr(), "sni", sni)
		_ = c.Close()
		return
	}
	b := r.pick()
	if b == nil || b.d == nil {
		log.Debug("l4: backend refused", "route", r.name, "remote", c.RemoteAddr())
		_ = c.Close()
		return
	}
	if r.terminate {
		// crypto/tls reads the peeked ClientHello again, then the socket.
		rc := &replayConn{Conn: c, pending: replay}
		tc := tls.Server(rc, t.tls)
		if err := tc.Handshake(); err != nil {
			log.Debug("l4: TLS handshake failed", "route", r.name, "remote", c.RemoteAddr(), "err", err)
			_ = c.Close()
			return
		}
		if len(rc.pending) > 0 {
			// Bytes after the ClientHello not read yet: keep them, the
			// buffer goes back to the pool.
			rc.pending = append([]byte(nil), rc.pending...)
		}
		s.bufs.Put(bufp)
		client, replay, bufp = tc, nil, nil
	}
	if t.proto == ir.ProtocolTLS {
		if err := c.SetDeadline(time.Time{}); err != nil {
			_ = c.Close()
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ConnectTimeout)
	up, addr, err := b.d.DialContext(ctx)
	cancel()
	if err != nil {
		log.Warn("l4: backend unreachable", "route", r.name, "backend", b.name, "err", err)
		_ = client.Close()
		return
	}
	if len(replay) > 0 {
		if _, err := up.Write(replay); err != nil {
			log.Debug("l4: replaying ClientHello", "route", r.name, "endpoint", addr, "err", err)
			_ = client.Close()
			_ = up.Close()
			return
		}
	}
	if bufp != nil {
		// The hello buffer goes back to the pool now, not when the
		// connection (which may last hours) ends.
		s.bufs.Put(bufp)
		bufp = nil
	}
	p := &pair{a: client, b: up, idle: r.idle}
	if !s.track(p) {
		p.closeBoth()
		return
	}
	p.run()
	s.untrack(p)
}

func (s *Server) track(p *pair) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forced {
		return false
	}
	s.conns[p] = struct{}{}
	return true
}

func (s *Server) untrack(p *pair) {
	s.mu.Lock()
	delete(s.conns, p)
	s.mu.Unlock()
}

// Conns returns the number of connections being forwarded.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Shutdown stops accepting and closes the UDP sessions and sockets, then
// waits for the forwarded connections to end until ctx ends, when it
// closes them and returns ctx's error. Listening sockets given to Serve are
// closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closing)
	}
	for _, ln := range s.lns {
		_ = ln.Close()
	}
	for _, pc := range s.pcs {
		_ = pc.Close()
	}
	for u := range s.udps {
		u.closeAll()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	s.forced = true
	for p := range s.conns {
		p.closeBoth()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// pair is a forwarded connection: client a and backend b.
type pair struct {
	a, b net.Conn
	idle time.Duration
	// quiet[i] is set when direction i (0: a→b, 1: b→a) saw no byte in
	// its last idle window, or has finished.
	quiet     [2]atomic.Bool
	closeOnce sync.Once
}

func (p *pair) closeBoth() {
	p.closeOnce.Do(func() {
		_ = p.a.Close()
		_ = p.b.Close()
	})
}

// run copies both ways until both directions end, honouring half-close:
// when one side stops sending, the other side's write half is closed and
// the opposite direction goes on.
func (p *pair) run() {
	done := make(chan struct{})
	go func() {
		p.pipe(1, p.a, p.b)
		close(done)
	}()
	p.pipe(0, p.b, p.a)
	<-done
	p.closeBoth()
}

// pipe copies src to dst (direction i).
//
// Idle timeout without per-read work: the read deadline of src is set once
// per idle window, and the copy — a single ReadFrom, which is splice(2)
// between TCP sockets — returns when it expires, telling how many bytes
// moved. A direction that moved none marks itself quiet; when the other
// direction is quiet too the connection is closed. So a connection silent
// both ways is closed after between one and two idle timeouts, and an
// active one costs one deadline update per direction and window.
//
// The write deadline of dst is one window later: a peer that reads nothing
// for that long fails the copy, and the connection is closed (a write that
// timed out may have lost bytes, so it is never resumed).
func (p *pair) pipe(i int, dst, src net.Conn) {
	for {
		now := time.Now()
		wdl := now.Add(2 * p.idle)
		_ = src.SetReadDeadline(now.Add(p.idle))
		_ = dst.SetWriteDeadline(wdl)
		n, err := copyConn(dst, src)
		if err == nil { // EOF: pass the half-close on
			p.quiet[i].Store(true)
			if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
				return
			}
			p.closeBoth()
			return
		}
		if !isTimeout(err) || !time.Now().Before(wdl) {
			p.quiet[i].Store(true)
			p.closeBoth()
			return
		}
		if n > 0 {
			p.quiet[i].Store(false)
			continue
		}
		p.quiet[i].Store(true)
		if p.quiet[1-i].Load() {
			p.closeBoth()
			return
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// copyConn is io.Copy that keeps the concrete types visible: ReadFrom of a
// *net.TCPConn from a *net.TCPConn is splice(2).
func copyConn(dst, src net.Conn) (int64, error) {
	dst, src = unwrap(dst), unwrap(src)
	if rf, ok := dst.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	if wt, ok := src.(io.WriterTo); ok {
		return wt.WriteTo(dst)
	}
	return io.Copy(dst, src)
}

// unwrap sees through a dialer's accounting wrapper (upstream's tracked
// connections) to the socket, so that TCP to TCP copies splice. TLS
// connections have no Unwrap and stay as they are.
func unwrap(c net.Conn) net.Conn {
	if u, ok := c.(interface{ Unwrap() net.Conn }); ok {
		return u.Unwrap()
	}
	return c
}

// replayConn is a client connection whose first reads return the bytes
// already peeked from it (the ClientHello), so that crypto/tls can
// terminate a connection whose SNI chose its route.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
