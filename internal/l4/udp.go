package l4

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// maxDatagram is the largest UDP payload.
const maxDatagram = 64 << 10

// udpServer is one UDP listener socket and its sessions. A session is one
// client address with its own connected upstream socket, so that replies
// can be told apart; they are sent back from the listener socket.
type udpServer struct {
	s  *Server
	pc *net.UDPConn

	mu   sync.Mutex
	sess map[netip.AddrPort]*session
}

// session is one client's flow; last is the time of its last datagram, in
// either direction.
type session struct {
	u      *udpServer
	client netip.AddrPort
	up     net.Conn
	idle   time.Duration
	last   atomic.Int64 // UnixNano
	once   sync.Once
}

// ServePacket reads datagrams from pc until Shutdown or a read error and
// forwards each client's datagrams to the backend its session chose when
// it began (first route of the Table, backend by weight). A session ends
// after the route's idle timeout without a datagram either way. It returns
// ErrServerClosed after Shutdown.
func (s *Server) ServePacket(pc *net.UDPConn) error {
	u := &udpServer{s: s, pc: pc, sess: map[netip.AddrPort]*session{}}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.pcs = append(s.pcs, pc)
	s.udps[u] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.udps, u)
		s.mu.Unlock()
		u.closeAll()
	}()

	buf := make([]byte, maxDatagram)
	for {
		n, client, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if isTimeout(err) {
				continue
			}
			return err
		}
		ss := u.session(client)
		if ss == nil {
			continue // refused or over the session bound: dropped
		}
		ss.touch()
		if _, err := ss.up.Write(buf[:n]); err != nil && !errors.Is(err, net.ErrClosed) {
			s.opts.Logger.Debug("l4: udp forward", "client", client, "err", err)
		}
	}
}

// session returns the client's session, starting one if needed; nil when
// the datagram is to be dropped.
func (u *udpServer) session(client netip.AddrPort) *session {
	u.mu.Lock()
	ss := u.sess[client]
	n := len(u.sess)
	u.mu.Unlock()
	if ss != nil {
		return ss
	}
	if n >= u.s.opts.MaxSessions {
		return nil
	}
	t := u.s.table.Load()
	if t == nil {
		return nil
	}
	r := t.match("")
	if r == nil {
		return nil
	}
	b := r.pick()
	if b == nil || b.d == nil {
		return nil
	}
	pd, ok := b.d.(PacketDialer)
	if !ok {
		u.s.opts.Logger.Warn("l4: cluster cannot carry UDP", "route", r.name, "backend", b.name)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), u.s.opts.ConnectTimeout)
	up, _, err := pd.DialPacket(ctx)
	cancel()
	if err != nil {
		u.s.opts.Logger.Warn("l4: udp backend unreachable", "route", r.name, "backend", b.name, "err", err)
		return nil
	}
	ss = &session{u: u, client: client, up: up, idle: r.idle}
	ss.touch()
	u.mu.Lock()
	if u.s.isClosedLocked() {
		u.mu.Unlock()
		_ = up.Close()
		return nil
	}
	u.sess[client] = ss
	u.mu.Unlock()
	u.s.wg.Add(1)
	go ss.replies()
	return ss
}

func (s *Server) isClosedLocked() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

func (ss *session) touch() { ss.last.Store(time.Now().UnixNano()) }

// replies sends the backend's datagrams to the client until the session
// has been idle for its timeout. The read deadline is moved only when it
// expires, so a busy session costs no deadline update per datagram.
func (ss *session) replies() {
	defer ss.u.s.wg.Done()
	defer ss.close()
	buf := make([]byte, maxDatagram)
	for {
		_ = ss.up.SetReadDeadline(time.Unix(0, ss.last.Load()).Add(ss.idle))
		for {
			n, err := ss.up.Read(buf)
			if err != nil {
				if !isTimeout(err) {
					return
				}
				break
			}
			ss.touch()
			if _, err := ss.u.pc.WriteToUDPAddrPort(buf[:n], ss.client); err != nil && errors.Is(err, net.ErrClosed) {
				return
			}
		}
		if time.Since(time.Unix(0, ss.last.Load())) >= ss.idle {
			return
		}
	}
}

// close ends the session and forgets it.
func (ss *session) close() {
	ss.once.Do(func() {
		ss.u.mu.Lock()
		if ss.u.sess[ss.client] == ss {
			delete(ss.u.sess, ss.client)
		}
		ss.u.mu.Unlock()
		_ = ss.up.Close()
	})
}

// closeAll ends every session.
func (u *udpServer) closeAll() {
	u.mu.Lock()
	all := make([]*session, 0, len(u.sess))
	for _, ss := range u.sess {
		all = append(all, ss)
	}
	u.mu.Unlock()
	for _, ss := range all {
		ss.close()
	}
}

// Sessions returns the number of UDP sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for u := range s.udps {
		u.mu.Lock()
		n += len(u.sess)
		u.mu.Unlock()
	}
	return n
}
