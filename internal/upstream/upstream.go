// Package upstream is the proxy's upstream side. internal/proxy hands it the
// clusters of each new configuration (internal/ir) and, per request, a
// fully prepared outbound request; upstream picks an endpoint of the
// cluster, carries the request over a pooled connection and returns the
// response.
//
// HTTP/1.1 goes through a synchronous client written for this package: the
// caller's goroutine writes the request and reads the response, and a
// connection goes back to its endpoint's idle list when the response body
// ends. There is no goroutine per connection and, for requests without a
// streaming body, none per request. h2c goes through net/http's Transport.
package upstream

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"causeway.dev/causeway/internal/ir"
)

// Options configure a Manager. The zero value is usable: every zero field
// takes the documented default.
type Options struct {
	DialTimeout        time.Duration // default 5s
	IdleTimeout        time.Duration // idle pooled connections closed after this; default 90s
	MaxIdlePerEndpoint int           // default 256
	ResolveInterval    time.Duration // DNS re-resolution of hostname endpoints; default 5s
	Resolver           *net.Resolver // default net.DefaultResolver
}

func (o *Options) setDefaults() {
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 90 * time.Second
	}
	if o.MaxIdlePerEndpoint <= 0 {
		o.MaxIdlePerEndpoint = 256
	}
	if o.ResolveInterval <= 0 {
		o.ResolveInterval = 5 * time.Second
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
}

var (
	// ErrNoEndpoint means the cluster has no endpoints (503, flag UH).
	ErrNoEndpoint = errors.New("no endpoint")
	// ErrConnect means dialling failed (503, flag UF); returned errors wrap it.
	ErrConnect = errors.New("connect failed")
)

// Manager holds the clusters of the current configuration and the
// endpoints (with their connection pools) they share. Its methods are safe
// for concurrent use.
type Manager struct {
	opts     Options
	dialer   net.Dialer
	clusters atomic.Pointer[map[string]*Cluster]

	mu     sync.Mutex // serialises Update, DNS changes and Close
	eps    map[epKey]*endpoint
	hosts  map[hostKey]*host
	closed bool
	stop   chan struct{}  // closed by Close; stops the janitor
	wg     sync.WaitGroup // janitor and resolvers
}

// epKey identifies an endpoint; its pool survives a reload while the key
// stays in use.
type epKey struct {
	proto   ir.UpstreamProtocol
	network string // "tcp" or "unix"
	addr    string
}

// NewManager returns a Manager without clusters.
func NewManager(opts Options) *Manager {
	opts.setDefaults()
	m := &Manager{
		opts:   opts,
		dialer: net.Dialer{Timeout: opts.DialTimeout},
		eps:    make(map[epKey]*endpoint),
		hosts:  make(map[hostKey]*host),
		stop:   make(chan struct{}),
	}
	m.wg.Add(1)
	go m.janitor()
	return m
}

// Update installs the clusters of a new configuration. Connection pools
// survive for endpoints that stay (same address and protocol), so a reload
// does not drop keep-alive connections; removed clusters keep working for
// requests already holding them, and their idle connections are closed.
// Hostname endpoints are resolved the first time synchronously (with a short
// timeout) and then every ResolveInterval; a failed lookup keeps the last
// good addresses.
func (m *Manager) Update(clusters []*ir.Cluster) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	want := make(map[hostKey]bool)
	for _, ic := range clusters {
		for _, e := range ic.Endpoints {
			if e.Hostname != "" {
				want[hostKey{e.Hostname, e.Port}] = true
			}
		}
	}
	for hk := range want {
		if m.hosts[hk] == nil {
			m.startHost(hk)
		}
	}
	next := make(map[string]*Cluster, len(clusters))
	for _, ic := range clusters {
		proto := ic.Protocol
		if proto == "" {
			proto = ir.UpstreamHTTP1
		}
		c := &Cluster{name: ic.Name, proto: proto, spec: append([]ir.Endpoint(nil), ic.Endpoints...)}
		m.build(c)
		next[c.name] = c
	}
	m.clusters.Store(&next)
	for hk, h := range m.hosts {
		if !want[hk] {
			h.cancel()
			delete(m.hosts, hk)
		}
	}
	m.sweep()
}

// Cluster returns the named cluster of the current configuration, nil when
// absent.
func (m *Manager) Cluster(name string) *Cluster {
	p := m.clusters.Load()
	if p == nil {
		return nil
	}
	return (*p)[name]
}

// Close stops DNS re-resolution and closes idle connections. Requests in
// flight finish; their connections are then closed instead of pooled.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	close(m.stop)
	for hk, h := range m.hosts {
		h.cancel()
		delete(m.hosts, hk)
	}
	m.clusters.Store(nil)
	for k, e := range m.eps {
		e.close()
		delete(m.eps, k)
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// build computes c's endpoints from its spec and the current DNS answers
// and installs a new picker. m.mu must be held.
func (m *Manager) build(c *Cluster) {
	var eps []*endpoint
	add := func(network, addr string) {
		k := epKey{c.proto, network, addr}
		e := m.eps[k]
		if e == nil {
			e = newEndpoint(m, k)
			m.eps[k] = e
		}
		eps = append(eps, e)
	}
	for _, s := range c.spec {
		switch {
		case s.Address != "":
			add("tcp", s.Address)
		case s.Unix != "":
			add("unix", s.Unix)
		case s.Hostname != "":
			if h := m.hosts[hostKey{s.Hostname, s.Port}]; h != nil {
				for _, a := range h.addrs {
					add("tcp", a)
				}
			}
		}
	}
	c.state.Store(&clusterState{eps: eps, picker: newRoundRobin(eps)})
}

// sweep closes the endpoints no current cluster uses. m.mu must be held.
func (m *Manager) sweep() {
	live := make(map[*endpoint]bool, len(m.eps))
	if p := m.clusters.Load(); p != nil {
		for _, c := range *p {
			for _, e := range c.state.Load().eps {
				live[e] = true
			}
		}
	}
	for k, e := range m.eps {
		if !live[e] {
			e.close()
			delete(m.eps, k)
		}
	}
}

// janitor closes connections idle for longer than IdleTimeout.
func (m *Manager) janitor() {
	defer m.wg.Done()
	period := max(m.opts.IdleTimeout/4, 10*time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	var eps []*endpoint
	for {
		select {
		case <-m.stop:
			return
		case now := <-t.C:
			eps = eps[:0]
			m.mu.Lock()
			for _, e := range m.eps {
				eps = append(eps, e)
			}
			m.mu.Unlock()
			for _, e := range eps {
				e.prune(now.Add(-m.opts.IdleTimeout))
			}
		}
	}
}

// Cluster is a set of interchangeable endpoints. It is safe for concurrent
// use and stays usable after a reload removed it.
type Cluster struct {
	name  string
	proto ir.UpstreamProtocol
	spec  []ir.Endpoint
	state atomic.Pointer[clusterState]
}

// clusterState is an immutable snapshot, replaced on DNS changes.
type clusterState struct {
	eps    []*endpoint
	picker picker
}

// picker chooses the endpoint for a request. Implementations are immutable
// snapshots (rebuilt when the endpoints change) and safe for concurrent use;
// pick returns nil when there is no endpoint. Load-balancing policies
// (least-request, ring hash, health-aware) plug in here.
type picker interface {
	pick(req *http.Request) *endpoint
}

type roundRobin struct {
	eps  []*endpoint
	next atomic.Uint64
}

func newRoundRobin(eps []*endpoint) *roundRobin { return &roundRobin{eps: eps} }

func (r *roundRobin) pick(*http.Request) *endpoint {
	n := uint64(len(r.eps))
	if n == 0 {
		return nil
	}
	return r.eps[(r.next.Add(1)-1)%n]
}

// Name returns the cluster's name.
func (c *Cluster) Name() string { return c.name }

// RoundTrip sends req to one endpoint of the cluster and returns the
// response. req is the outbound request, fully prepared by the proxy
// (URL.Path/RawQuery, Host, Header with hop-by-hop headers removed; an
// upgrade keeps Connection and Upgrade). req.Context() carries cancellation
// and the deadline; context errors are returned wrapped. A connect failure
// tries one other endpoint before failing with an error wrapping
// ErrConnect. As with http.RoundTripper, req.Body is always closed and the
// caller must close the response body. A 101 response's Body is an
// io.ReadWriteCloser over the raw connection.
func (c *Cluster) RoundTrip(req *http.Request) (*http.Response, error) {
	st := c.state.Load()
	e := st.picker.pick(req)
	if e == nil {
		closeBody(req.Body)
		return nil, fmt.Errorf("cluster %s: %w", c.name, ErrNoEndpoint)
	}
	resp, untouched, err := e.roundTrip(req)
	if err != nil && untouched && len(st.eps) > 1 && req.Context().Err() == nil {
		next := st.picker.pick(req)
		if next == e {
			next = st.picker.pick(req)
		}
		if next != e {
			resp, untouched, err = next.roundTrip(req)
		}
	}
	if err != nil && untouched {
		closeBody(req.Body)
	}
	return resp, err
}

func closeBody(b io.ReadCloser) {
	if b != nil && b != http.NoBody {
		b.Close()
	}
}
