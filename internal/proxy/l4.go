package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/l4"
	"causeway.dev/causeway/internal/upstream"
)

// TLS, TCP and UDP listeners are served by internal/l4: the proxy owns
// their sockets (kept across Applies by listener name, as HTTP ones) and
// swaps their compiled l4.Table atomically.

// isL4 tells whether a listener protocol is served by internal/l4.
func isL4(p ir.Protocol) bool {
	return p == ir.ProtocolTLS || p == ir.ProtocolTCP || p == ir.ProtocolUDP
}

// compileL4 compiles an L4 listener into out.l4.
func compileL4(out *compiled, l *ir.Listener, clusters map[string]bool) error {
	t, err := l4.Compile(l, func(c string) bool { return clusters[c] })
	if err != nil {
		return fmt.Errorf("listener %s: %w", l.Name, err)
	}
	out.l4[l.Name] = t
	out.graphs[l.Name] = nil // the name is taken
	return nil
}

// resolveL4 binds the L4 tables' backends to their clusters. A cluster
// that cannot dial (no l4.Dialer) refuses its share.
func (c *compiled) resolveL4(m *upstream.Manager) {
	for _, t := range c.l4 {
		t.Resolve(func(name string) l4.Dialer {
			cl := m.Cluster(name)
			if cl == nil {
				return nil
			}
			if d, ok := any(cl).(l4.Dialer); ok {
				return d
			}
			return nil
		})
	}
}

// bindL4 opens the socket of an L4 listener; it is served by start.
func (p *Proxy) bindL4(l *ir.Listener) (*listener, error) {
	addr := net.JoinHostPort(l.Address, strconv.Itoa(l.Port))
	ls := &listener{
		p:     p,
		name:  l.Name,
		key:   listenerKey(l),
		stats: p.opts.Metrics.Listener(l.Name),
		done:  make(chan struct{}),
		l4:    l4.New(l4.Options{Logger: p.opts.Logger, MaxConnections: p.opts.MaxConnections}),
	}
	if l.Protocol == ir.ProtocolUDP {
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, err
		}
		pc, err := net.ListenUDP("udp", ua)
		if err != nil {
			return nil, err
		}
		ls.l4pc = pc
		return ls, nil
	}
	nl, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	ls.l4ln = nl
	return ls, nil
}

// startL4 serves an L4 listener in a goroutine that ends when it stops.
func (ls *listener) startL4() {
	go func() {
		defer close(ls.done)
		var err error
		if ls.l4pc != nil {
			err = ls.l4.ServePacket(ls.l4pc)
		} else {
			err = ls.l4.Serve(ls.l4ln)
		}
		if err != nil && !errors.Is(err, l4.ErrServerClosed) {
			ls.p.opts.Logger.Error("listener stopped", "listener", ls.name, "err", err)
		}
	}()
}

// closeSocket stops accepting, without waiting for connections.
func (ls *listener) closeSocket() {
	switch {
	case ls.l4pc != nil:
		_ = ls.l4pc.Close()
	case ls.l4ln != nil:
		_ = ls.l4ln.Close()
	default:
		_ = ls.ln.Close()
	}
}

// stop shuts the listener's server down, waiting for its connections
// until ctx ends, then cutting them.
func (ls *listener) stop(ctx context.Context) error {
	if ls.l4 != nil {
		return ls.l4.Shutdown(ctx)
	}
	h2done := make(chan error, 1)
	go func() { h2done <- ls.h2.Shutdown(ctx) }()
	err := ls.srv.Shutdown(ctx)
	if err != nil {
		_ = ls.srv.Close()
	}
	return errors.Join(err, <-h2done)
}

// l4Addr is the bound address of an L4 listener.
func (ls *listener) l4Addr() net.Addr {
	if ls.l4pc != nil {
		return ls.l4pc.LocalAddr()
	}
	return ls.l4ln.Addr()
}
