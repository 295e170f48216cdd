// Package proxy is the proxy runtime, the last stage of the data flow: it
// compiles an ir.Config into an immutable handler graph (one route table
// per listener, each route with its filters, weighted backends, timeouts
// and mirrors precomputed), swaps it in atomically, owns the listening
// sockets and serves HTTP/1.1, HTTP/2 over TLS (ALPN) and h2c with prior
// knowledge. Requests go out through internal/upstream.
//
// Concurrency: Apply, Shutdown and the accessors may be called from any
// goroutine; Apply and Shutdown are serialised. The request path reads the
// current graph with one atomic load and takes no lock.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/telemetry"
	"causeway.dev/causeway/internal/upstream"
)

// Options configure a Proxy.
type Options struct {
	// Upstreams carries requests to clusters; required. Apply updates it
	// with the clusters of each configuration.
	Upstreams *upstream.Manager
	// Metrics records per-route and per-listener metrics; nil: none.
	Metrics *telemetry.Metrics
	// AccessLog receives one entry per request; nil: off.
	AccessLog *telemetry.AccessLog
	// Logger; nil: slog.Default().
	Logger *slog.Logger
	// TrustedHops is the number of proxies in front of this one whose
	// X-Forwarded-* and X-Request-Id headers are trusted. 0: the peer is
	// the client, and its X-Forwarded-Proto, X-Forwarded-Host and
	// X-Request-Id are replaced.
	TrustedHops int
	// MaxHeaderBytes bounds request headers; 0: 64 KiB.
	MaxHeaderBytes int
	// MaxBodyBytes bounds request bodies (413 beyond); 0: 64 GiB.
	MaxBodyBytes int64
	// MaxConnections bounds the connections served per listener; accept
	// waits beyond it. 0: 10000.
	MaxConnections int
	// ReadHeaderTimeout bounds reading request headers; 0: 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle client connections; 0: 120s.
	IdleTimeout time.Duration
}

// drainTimeout bounds how long a listener removed by Apply lets its
// requests finish.
const drainTimeout = 5 * time.Minute

// Proxy is the proxy runtime. Create it with New.
type Proxy struct {
	opts Options

	mu        sync.Mutex // serialises Apply and Shutdown
	listeners map[string]*listener
	closed    bool
	cfg       atomic.Pointer[ir.Config]

	// bg is cancelled when Shutdown ends; it bounds mirrors and drains.
	bg     context.Context
	stopBg context.CancelFunc
	// active counts drains, mirrors and upgrades, which Shutdown waits
	// for (a counter, not a WaitGroup: they may start while it waits).
	active atomic.Int64

	mirrorSlots   chan struct{}
	mirrorDropped atomic.Int64

	// budgets holds the *retryBudget of each cluster name (retry.go); they
	// outlive reloads so that requests in flight stay counted.
	budgets sync.Map

	upMu     sync.Mutex
	upgrades map[net.Conn]struct{} // hijacked connections, closed at Shutdown
}

// New returns a Proxy serving nothing until the first Apply.
func New(opts Options) *Proxy {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 64 << 10
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 64 << 30
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = 10000
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = 10 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 120 * time.Second
	}
	opts.Metrics.WatchUpstreams(opts.Upstreams) // endpoint ejections and health, read at scrape time
	bg, stop := context.WithCancel(context.Background())
	return &Proxy{
		opts:        opts,
		listeners:   map[string]*listener{},
		bg:          bg,
		stopBg:      stop,
		mirrorSlots: make(chan struct{}, maxMirrors),
		upgrades:    map[net.Conn]struct{}{},
	}
}

// BindError reports the listeners whose socket could not be opened; the
// rest of the configuration was applied.
type BindError struct {
	Failed map[string]error // by listener name
}

func (e *BindError) Error() string {
	var b strings.Builder
	b.WriteString("bind failed:")
	for name, err := range e.Failed {
		fmt.Fprintf(&b, " listener %s: %v;", name, err)
	}
	return strings.TrimSuffix(b.String(), ";")
}

// ErrClosed is returned by Apply after Shutdown.
var ErrClosed = errors.New("proxy shut down")

// Apply compiles cfg and swaps it in. On a compile error nothing changes
// and the error names the listener and route. New listeners are bound
// before the swap; those that fail to bind are reported in a *BindError
// while the rest is applied. Listeners with the same name, protocol and
// address keep their socket and connections; removed ones stop accepting
// and drain in the background. Requests in flight finish on the graph
// they started with.
func (p *Proxy) Apply(cfg *ir.Config) error {
	if cfg == nil {
		return errors.New("nil config")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	c, err := p.compile(cfg)
	if err != nil {
		return err
	}

	// Sockets whose identity changed are released first so that the new
	// socket can take the same port.
	want := map[string]*ir.Listener{}
	for _, l := range cfg.Listeners {
		if l != nil {
			want[l.Name] = l
		}
	}
	var removed []*listener
	for name, ls := range p.listeners {
		if l, ok := want[name]; !ok || listenerKey(l) != ls.key {
			removed = append(removed, ls)
			delete(p.listeners, name)
			ls.closeSocket()
		}
	}
	var added []*listener
	var bindErr *BindError
	for _, l := range cfg.Listeners {
		if l == nil || p.listeners[l.Name] != nil {
			continue
		}
		ls, err := p.bind(l)
		if err != nil {
			if bindErr == nil {
				bindErr = &BindError{Failed: map[string]error{}}
			}
			bindErr.Failed[l.Name] = err
			continue
		}
		p.listeners[l.Name] = ls
		added = append(added, ls)
	}

	p.opts.Upstreams.Update(cfg.Clusters)
	c.resolve(p.opts.Upstreams)
	for name, ls := range p.listeners {
		if cs := c.certs[name]; cs != nil {
			ls.certs.Store(cs)
		}
		ls.graph.Store(c.graphs[name])
		if t := c.l4[name]; t != nil && ls.l4 != nil {
			ls.l4.Swap(t)
		}
	}
	for _, ls := range added {
		ls.start()
	}
	bindErr = p.reconcileH3(cfg, removed, bindErr)
	for _, ls := range removed {
		p.drain(ls)
	}
	p.cfg.Store(cfg)
	if bindErr != nil {
		return bindErr
	}
	return nil
}

// drain lets a removed listener's requests finish, in the background.
func (p *Proxy) drain(ls *listener) {
	p.active.Add(1)
	go func() {
		defer p.active.Add(-1)
		ctx, cancel := context.WithTimeout(p.bg, drainTimeout)
		defer cancel()
		_ = ls.stop(ctx)
		<-ls.done
	}()
}

// Config returns the last applied configuration, nil before the first.
func (p *Proxy) Config() *ir.Config { return p.cfg.Load() }

// Ready tells whether a configuration has been applied.
func (p *Proxy) Ready() bool { return p.cfg.Load() != nil }

// Addr returns the bound address of the named listener, nil if it is not
// bound. With port 0 in the IR it tells the port the system chose.
func (p *Proxy) Addr(name string) net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ls := p.listeners[name]; ls != nil {
		return ls.addr()
	}
	return nil
}

// MirrorsDropped counts mirror copies not sent: over the in-flight bound,
// or with a request body too large to copy.
func (p *Proxy) MirrorsDropped() int64 { return p.mirrorDropped.Load() }

// Shutdown stops accepting, lets requests in flight (and upgraded
// connections) finish until ctx ends, then closes what is left. It
// returns ctx's error if it had to cut connections.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ls := make([]*listener, 0, len(p.listeners))
	for _, l := range p.listeners {
		ls = append(ls, l)
	}
	p.listeners = map[string]*listener{}
	p.mu.Unlock()

	var wg sync.WaitGroup
	errs := make([]error, len(ls))
	for i, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.stopH3(ctx)
			errs[i] = l.stop(ctx)
			<-l.done
		}()
	}
	wg.Wait()

	// Upgraded connections, mirrors and drains: wait for them until ctx
	// ends, then cut them.
	var err error
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for p.active.Load() > 0 && err == nil {
		select {
		case <-tick.C:
		case <-ctx.Done():
			err = ctx.Err()
			p.closeUpgrades()
			p.stopBg()
		}
	}
	for p.active.Load() > 0 {
		<-tick.C
	}
	p.stopBg()
	if err == nil {
		err = errors.Join(errs...)
	}
	return err
}
