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
// streaming body, none per request. HTTP/2 (h2c, or h2 over TLS) goes
// through a client of its own too (h2c.go): one reading goroutine per
// connection, requests written by their callers.
//
// Resilience lives beside the transports: each Cluster publishes an
// immutable snapshot (atomic.Pointer) holding the picker over the
// endpoints that take traffic now; it is rebuilt when health checks
// (health.go), outlier detection (outlier.go), locality (locality.go),
// slow start or the endpoint set change it, never per request; weighted
// locality distribution (distribute.go) wraps the picker in one that
// chooses a locality first. EndpointStats reports ejections and health for
// metrics. A request
// loads the snapshot, passes the circuit breaker (breaker.go), picks
// (picker.go, hash.go) and reports its outcome to outlier detection, all
// with atomics.
package upstream

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	// DialTimeout bounds dialling an endpoint; default 5s. A cluster's
	// ConnectTimeout overrides it.
	DialTimeout time.Duration
	// IdleTimeout closes pooled connections idle this long; default 50s,
	// below the keep-alive timeouts of common servers (nginx 75s, Apache
	// 5s aside, most 60s or more; Go's net/http has none), so that a
	// backend rarely closes a connection the pool is about to reuse. Set
	// it below the backends' own timeout when it is shorter (Node.js: 5s).
	// A cluster's IdleTimeout overrides it.
	IdleTimeout        time.Duration
	MaxIdlePerEndpoint int           // default 256
	ResolveInterval    time.Duration // DNS re-resolution of hostname endpoints; default 5s
	Resolver           *net.Resolver // default net.DefaultResolver

	// Zone and Region locate this proxy. With either set, clusters prefer
	// endpoints in the same zone, then the same region, then any (see
	// LocalityFailoverThreshold), unless a cluster's LocalityDistribute has
	// a rule for this locality (distribute.go). Empty: no locality
	// preference; only a distribution rule from "*" applies.
	Zone, Region string
	// LocalityFailoverThreshold is the percentage of healthy endpoints a
	// locality needs to keep all of the traffic; default 70. The rule, per
	// request snapshot: priorities are same zone, same region, anywhere;
	// the first non-empty priority whose healthy share is at least the
	// threshold gets all the traffic, spread over its healthy endpoints.
	// When none reaches it, the healthy endpoints of all priorities share
	// the traffic (or, below the panic threshold, all endpoints). Unlike
	// Envoy, traffic moves whole rather than spilling proportionally.
	LocalityFailoverThreshold int

	// Logger receives endpoint ejections, returns and health changes (at
	// info); default discards.
	Logger *slog.Logger
	// OnEndpointEvent, when set, is called for each EventEjected,
	// EventReturned, EventHealthy and EventUnhealthy, with the cluster's
	// name and the endpoint's address, for metrics. It is called without
	// locks held, from request or health-check goroutines, and must not
	// block.
	OnEndpointEvent func(cluster, endpoint, event string)
}

// Endpoint events passed to Options.OnEndpointEvent.
const (
	EventEjected   = "ejected"   // outlier detection took the endpoint out
	EventReturned  = "returned"  // its ejection time is over
	EventHealthy   = "healthy"   // active health checks passed HealthyThreshold times
	EventUnhealthy = "unhealthy" // active health checks failed UnhealthyThreshold times
)

func (o *Options) setDefaults() {
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 50 * time.Second
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
	if o.LocalityFailoverThreshold <= 0 {
		o.LocalityFailoverThreshold = 70
	}
	o.LocalityFailoverThreshold = min(o.LocalityFailoverThreshold, 100)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
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
	clusters atomic.Pointer[map[string]*Cluster]

	// mu serialises Update, DNS changes and Close. Lock order: mu, then a
	// Cluster's mu.
	mu     sync.Mutex
	eps    map[epKey]*endpoint
	hosts  map[hostKey]*host
	closed bool
	gen    uint64         // counts builds: endpoints shared by clusters take their smallest timeouts per generation
	stop   chan struct{}  // closed by Close; stops the janitor
	wg     sync.WaitGroup // janitor, resolvers and health checkers
}

// epKey identifies an endpoint; its pool survives a reload while the key
// stays in use.
type epKey struct {
	proto   ir.UpstreamProtocol
	network string // "tcp" or "unix"
	addr    string
	tls     string // tlsKey: "" for plaintext
}

// NewManager returns a Manager without clusters.
func NewManager(opts Options) *Manager {
	opts.setDefaults()
	m := &Manager{
		opts:  opts,
		eps:   make(map[epKey]*endpoint),
		hosts: make(map[hostKey]*host),
		stop:  make(chan struct{}),
	}
	m.wg.Add(1)
	go m.janitor()
	return m
}

// Update installs the clusters of a new configuration. A cluster keeps its
// identity (the *Cluster), its endpoints' health, ejection and slow-start
// state and its health checkers across reloads while its name and protocol
// stay; health checkers restart only when the cluster's health check or
// endpoint set changes. Connection pools survive for endpoints that stay
// (same address and protocol), so a reload does not drop keep-alive
// connections; removed clusters keep working for requests already holding
// them (without health checks), and their idle connections are closed.
// Hostname endpoints are resolved the first time synchronously (with a
// short timeout) and then every ResolveInterval; a failed lookup keeps the
// last good addresses.
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
	var old map[string]*Cluster
	if p := m.clusters.Load(); p != nil {
		old = *p
	}
	m.gen++
	next := make(map[string]*Cluster, len(clusters))
	for _, ic := range clusters {
		proto := ic.Protocol
		if proto == "" {
			proto = ir.UpstreamHTTP1
		}
		c := old[ic.Name]
		if c == nil || c.proto != proto {
			c = newCluster(m, ic.Name, proto)
		}
		c.configure(ic)
		if tk := tlsKey(ic.Name, ic.TLS); tk != c.tlsKey {
			c.tlsKey, c.tlsc = tk, nil
			if ic.TLS != nil {
				c.tlsc = newTLSClient(ic.Name, ic.TLS, proto, m.opts.Logger)
			}
		}
		m.build(c)
		next[c.name] = c
	}
	m.clusters.Store(&next)
	for name, c := range old {
		if next[name] != c {
			c.stop()
		}
	}
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

// Close stops DNS re-resolution and health checks and closes idle
// connections. Requests in flight finish; their connections are then
// closed instead of pooled.
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
	if p := m.clusters.Load(); p != nil {
		for _, c := range *p {
			c.stop()
		}
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
// and installs them. m.mu must be held.
func (m *Manager) build(c *Cluster) {
	var eps []target
	add := func(network, addr string, s *ir.Endpoint) {
		k := epKey{c.proto, network, addr, c.tlsKey}
		e := m.eps[k]
		if e == nil {
			e = newEndpoint(m, k, c.idleTimeout, c.tlsc)
			m.eps[k] = e
		}
		e.setTimeouts(c.connectTimeout, c.idleTimeout)
		w := max(s.Weight, 1)
		for i := range eps {
			if eps[i].ep == e { // the same address twice: one endpoint, weights added
				eps[i].weight += uint64(w)
				return
			}
		}
		eps = append(eps, target{ep: e, key: k, weight: uint64(w), zone: s.Zone, region: s.Region})
	}
	for i := range c.spec {
		s := &c.spec[i]
		switch {
		case s.Address != "":
			add("tcp", s.Address, s)
		case s.Unix != "":
			add("unix", s.Unix, s)
		case s.Hostname != "":
			if h := m.hosts[hostKey{s.Hostname, s.Port}]; h != nil {
				for _, a := range h.addrs {
					add("tcp", a, s)
				}
			}
		}
	}
	c.setTargets(eps)
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

// janitor closes connections idle for longer than their endpoint's idle
// timeout.
func (m *Manager) janitor() {
	defer m.wg.Done()
	period := func() time.Duration {
		d := m.opts.IdleTimeout
		m.mu.Lock()
		for _, e := range m.eps {
			d = min(d, e.idleTimeout())
		}
		m.mu.Unlock()
		return max(d/4, 10*time.Millisecond)
	}
	t := time.NewTimer(period())
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
				e.prune(now.Add(-e.idleTimeout()))
			}
			t.Reset(period())
		}
	}
}

// Name returns the cluster's name.
func (c *Cluster) Name() string { return c.name }

// RoundTrip sends req to one endpoint of the cluster and returns the
// response. req is the outbound request, fully prepared by the proxy
// (URL.Path/RawQuery, Host, Header with hop-by-hop headers removed; an
// upgrade keeps Connection and Upgrade); for consistent hashing it also
// carries what the keys read: headers, the Cookie header, URL.RawQuery and
// RemoteAddr (the proxy passes its inbound request's). req.Context()
// carries cancellation and the deadline; context errors are returned
// wrapped. A connect failure tries one other endpoint before failing with
// an error wrapping ErrConnect. Errors wrapping ErrOverflow mean a circuit
// breaker limit (503, flag UO), ErrNoEndpoint that no endpoint is
// available.
//
// As with http.RoundTripper, req.Body is always closed and the caller must
// close the response body: the request counts as in flight (for the
// circuit breaker and least-request balancing) until the body is read to
// its end or closed. EndpointOf tells which endpoint answered. With a hash
// cookie the request lacked, the response carries its Set-Cookie header. A
// 101 response's Body is an io.ReadWriteCloser over the raw connection.
func (c *Cluster) RoundTrip(req *http.Request) (*http.Response, error) {
	st := c.state.Load()
	b := st.breaker
	if !b.acquireRequest() {
		closeBody(req.Body)
		return nil, fmt.Errorf("cluster %s: %w: max requests", c.name, ErrOverflow)
	}
	mb, h, cookie := st.choose(req)
	if mb == nil {
		b.releaseRequest()
		closeBody(req.Body)
		return nil, fmt.Errorf("cluster %s: %w", c.name, ErrNoEndpoint)
	}
	tr := tracker{b: b}
	if c.proto == ir.UpstreamHTTP1 {
		ok, err := b.acquireConn(req.Context())
		if err != nil {
			b.releaseRequest()
			closeBody(req.Body)
			return nil, fmt.Errorf("cluster %s: %w", c.name, err)
		}
		tr.conn = ok
	}
	mb.active.Add(1)
	resp, untouched, err := mb.ep.roundTrip(req)
	st.observe(mb, resp, timeoutCause(req.Context(), err))
	if err != nil && untouched && len(st.members) > 1 && req.Context().Err() == nil {
		next := st.repick(mb, h)
		if next != nil && next != mb {
			mb.active.Add(-1)
			mb = next
			mb.active.Add(1)
			resp, untouched, err = mb.ep.roundTrip(req)
			st.observe(mb, resp, timeoutCause(req.Context(), err))
		}
	}
	tr.m = mb
	if err != nil {
		if untouched {
			closeBody(req.Body)
		}
		tr.done()
		return nil, err
	}
	switch body := resp.Body.(type) {
	case *respBody:
		body.tr = tr
	case *upgraded:
		body.tr = tr
	default:
		if body == http.NoBody || body == nil {
			tr.done()
			resp.Body = mb.ep.noBody
		} else {
			resp.Body = &wrappedBody{rc: body, ep: mb.ep, tr: tr}
		}
	}
	if cookie != nil {
		resp.Header.Add("Set-Cookie", cookie.String())
	}
	return resp, nil
}

func closeBody(b io.ReadCloser) {
	if b != nil && b != http.NoBody {
		b.Close()
	}
}
