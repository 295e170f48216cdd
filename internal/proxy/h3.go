package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"causeway.dev/causeway/internal/ir"
)

// HTTP/3 (RFC 9114) over QUIC, per HTTPS listener with
// ListenerSettings.HTTP3. The UDP socket has the address and port of the
// listener's TCP socket and lives beside it: Apply keeps it while the TCP
// socket is kept and HTTP/3 stays on, binds it when HTTP/3 is switched on,
// and closes it when HTTP/3 is switched off or the listener goes. The
// QUIC handshake takes its certificates, client validation and versions
// from the same GetConfigForClient as TCP (tlsconfig.go), so a
// certificate rotated by Apply is used by the next QUIC handshake too;
// requests go to the same handler (and graph) as HTTP/1.1 and HTTP/2.
//
// HTTP/1.1 and HTTP/2 responses of the listener advertise the service with
// Alt-Svc (advertiseH3). MaxConnections does not bound QUIC connections.
// 0-RTT is off: replayable early data is not worth it in front of
// non-idempotent backends.

// altSvcMaxAge is how long clients may remember the advertisement.
const altSvcMaxAge = 86400

// h3Server serves HTTP/3 on one UDP socket.
type h3Server struct {
	pc     *net.UDPConn
	srv    *http3.Server
	altSvc []string // Alt-Svc header value, shared read-only
	done   chan struct{}
}

// startH3 binds the UDP twin of ls's TCP socket and serves HTTP/3 on it.
func (ls *listener) startH3() (*h3Server, error) {
	tcp, ok := ls.ln.Addr().(*net.TCPAddr)
	if !ok {
		return nil, errors.New("http/3: listener has no TCP address")
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: tcp.IP, Port: tcp.Port, Zone: tcp.Zone})
	if err != nil {
		return nil, err
	}
	log := ls.p.opts.Logger
	h := &h3Server{
		pc:     pc,
		altSvc: []string{`h3=":` + strconv.Itoa(tcp.Port) + `"; ma=` + strconv.Itoa(altSvcMaxAge)},
		done:   make(chan struct{}),
		srv: &http3.Server{
			Handler:        ls,
			TLSConfig:      ls.socketTLSConfig(),
			QUICConfig:     &quic.Config{Allow0RTT: false, MaxIdleTimeout: ls.settings.idleTimeout},
			MaxHeaderBytes: ls.settings.maxHeaderBytes,
			IdleTimeout:    ls.settings.idleTimeout,
			Port:           tcp.Port,
			Logger:         slog.New(log.Handler()).With("listener", ls.name, "proto", "HTTP/3"),
		},
	}
	go func() {
		defer close(h.done)
		err := h.srv.Serve(pc)
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, quic.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			log.Error("HTTP/3 listener stopped", "listener", ls.name, "err", err)
		}
	}()
	return h, nil
}

// close stops h, cutting its connections, closes the socket and waits for
// Serve to return.
func (h *h3Server) close() {
	_ = h.srv.Close()
	_ = h.pc.Close()
	<-h.done
}

// stopH3 stops the listener's HTTP/3 service, if any, letting requests in
// flight finish until ctx ends; Shutdown calls it.
func (ls *listener) stopH3(ctx context.Context) {
	if h := ls.h3.Swap(nil); h != nil {
		_ = h.srv.Shutdown(ctx)
		h.close()
	}
}

// killH3 stops the listener's HTTP/3 service at once, if any.
func (ls *listener) killH3() {
	if h := ls.h3.Swap(nil); h != nil {
		h.close()
	}
}

// advertiseH3 adds Alt-Svc to HTTP/1.1 and HTTP/2 responses of a listener
// serving HTTP/3. It is on the request path: one atomic load.
func (ls *listener) advertiseH3(w http.ResponseWriter, r *http.Request) {
	if h := ls.h3.Load(); h != nil && r.ProtoMajor < 3 {
		w.Header()["Alt-Svc"] = h.altSvc
	}
}

// reconcileH3 brings the HTTP/3 sockets in line with cfg once Apply has
// settled the TCP listeners; removed are the listeners Apply dropped. A
// UDP socket that cannot be bound is reported in the returned BindError
// under "NAME (HTTP/3)"; the TCP listener serves on. p.mu is held.
func (p *Proxy) reconcileH3(cfg *ir.Config, removed []*listener, bindErr *BindError) *BindError {
	// The sockets of removed listeners go first, so that a listener bound
	// again on the same port can take the UDP port too. Their QUIC
	// connections are cut: the port cannot be shared while they drain.
	for _, ls := range removed {
		ls.killH3()
	}
	for _, l := range cfg.Listeners {
		if l == nil {
			continue
		}
		ls := p.listeners[l.Name]
		if ls == nil || ls.ln == nil {
			continue
		}
		want := ls.tls && l.Settings != nil && l.Settings.HTTP3
		switch have := ls.h3.Load() != nil; {
		case want && !have:
			h, err := ls.startH3()
			if err != nil {
				if bindErr == nil {
					bindErr = &BindError{Failed: map[string]error{}}
				}
				bindErr.Failed[l.Name+" (HTTP/3)"] = err
				continue
			}
			ls.h3.Store(h)
		case !want && have:
			// Switched off: clients fall back to TCP, as Alt-Svc allows.
			ls.killH3()
		}
	}
	// Listeners that left cfg are in removed; any others are stopped by
	// Shutdown.
	return bindErr
}
