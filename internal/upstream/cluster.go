package upstream

import (
	"cmp"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"causeway.dev/causeway/internal/ir"
)

// Cluster is a set of interchangeable endpoints. It is safe for concurrent
// use and stays usable after a reload removed it.
//
// Requests read an immutable snapshot (state) and touch only atomics; the
// mutex is taken by what changes the snapshot: reloads, DNS answers,
// health-check verdicts, ejections and returns, slow-start steps.
type Cluster struct {
	name  string
	proto ir.UpstreamProtocol
	m     *Manager
	state atomic.Pointer[clusterState]

	// Set by configure under m.mu; read under m.mu.
	spec           []ir.Endpoint
	connectTimeout time.Duration
	idleTimeout    time.Duration
	tlsKey         string     // tls.go; "" for plaintext
	tlsc           *tlsClient // nil for plaintext

	mu       sync.Mutex
	members  []*member // in spec order
	lb       ir.LoadBalancer
	keys     []hashKey
	dist     *distribution // nil: failover by priority (locality.go)
	hc       *healthConfig // nil: no active health checks
	hcRun    *healthRun    // running checkers, nil when none
	outlier  *outlierConfig
	panicPct int
	breaker  *breaker
	cbSpec   ir.CircuitBreaker
	built    bool // the first endpoint set is installed: later ones slow-start
	stopped  bool
	timer    *time.Timer // outlier returns, decay and slow-start steps
}

// member is an endpoint as part of one cluster, with the cluster's view of
// it: weight, locality, health, ejection and load. Members outlive reloads
// while the cluster keeps the endpoint.
type member struct {
	c    *Cluster
	ep   *endpoint
	key  epKey
	prio int // locality priority: 0 same zone, 1 same region, 2 other

	zone, region string // for locality distribution (distribute.go)

	// Request path, lock-free.
	active                     atomic.Int64 // requests in flight
	cons5xx, consGW, consLocal atomic.Int32

	// Under c.mu.
	weight    uint64
	hcOK      bool      // active health verdict; true without health checks
	ejected   bool      // by outlier detection, until until
	until     time.Time // end of the current ejection
	ejections int       // times ejected, decaying; multiplies the ejection time
	decayAt   time.Time // when ejections next decreases, if not ejected again
	rampFrom  time.Time // slow start origin; zero: full weight

	// Counts for metrics (Manager.EndpointStats), under c.mu; they live
	// as long as the member.
	ejectedTotal, toHealthy, toUnhealthy uint64
}

// up reports whether m may take traffic outside panic mode. c.mu held.
func (m *member) up() bool { return m.hcOK && !m.ejected }

// target is an endpoint as the spec and DNS name it, before it becomes a
// member.
type target struct {
	ep           *endpoint
	key          epKey
	weight       uint64
	zone, region string
}

// clusterState is an immutable snapshot: the endpoints and the picker over
// those that take traffic now, with the settings requests need.
type clusterState struct {
	eps     []*endpoint // all endpoints, for the Manager's sweep
	members []*member   // all members
	picker  picker      // over the members chosen by health and locality; nil when none
	keys    []hashKey   // hash policy of RingHash and Maglev
	breaker *breaker
	outlier *outlierConfig // nil: no passive outlier detection
	panic   bool           // too few healthy endpoints: all are used
}

func newCluster(m *Manager, name string, proto ir.UpstreamProtocol) *Cluster {
	c := &Cluster{name: name, proto: proto, m: m, panicPct: 50}
	c.breaker = newBreaker(ir.CircuitBreaker{})
	c.state.Store(&clusterState{breaker: c.breaker})
	return c
}

// configure takes the settings of a new configuration; the snapshot is
// rebuilt by the following setTargets. m.mu must be held.
func (c *Cluster) configure(ic *ir.Cluster) {
	c.spec = append([]ir.Endpoint(nil), ic.Endpoints...)
	c.connectTimeout = time.Duration(ic.ConnectTimeout)
	c.idleTimeout = time.Duration(ic.IdleTimeout)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lb = ir.LoadBalancer{Policy: ir.LBRoundRobin}
	if ic.LoadBalancer != nil {
		c.lb = *ic.LoadBalancer
		c.lb.Policy = cmp.Or(c.lb.Policy, ir.LBRoundRobin)
	}
	c.keys = nil
	if c.lb.Policy == ir.LBRingHash || c.lb.Policy == ir.LBMaglev {
		c.keys = compileKeys(c.lb.HashOn)
	}
	c.dist = c.m.distributionFor(c.lb.LocalityDistribute)
	c.hc = newHealthConfig(ic.HealthCheck)
	c.outlier = newOutlierConfig(ic.Outlier)
	c.panicPct = 50
	if ic.Outlier != nil && ic.Outlier.PanicThreshold != nil {
		c.panicPct = *ic.Outlier.PanicThreshold
	}
	cb := ir.CircuitBreaker{}
	if ic.CircuitBreaker != nil {
		cb = *ic.CircuitBreaker
	}
	if cb != c.cbSpec { // new limits start with fresh counters
		c.cbSpec = cb
		c.breaker = newBreaker(cb)
	}
}

// setTargets installs an endpoint set, keeping the members (and their
// state) of endpoints that stay. m.mu must be held.
func (c *Cluster) setTargets(ts []target) {
	c.mu.Lock()
	now := time.Now()
	old := make(map[epKey]*member, len(c.members))
	for _, mb := range c.members {
		old[mb.key] = mb
	}
	members := make([]*member, 0, len(ts))
	for _, t := range ts {
		mb := old[t.key]
		if mb == nil {
			mb = &member{c: c, ep: t.ep, key: t.key, hcOK: true}
			if c.built {
				mb.rampFrom = now
			}
		}
		mb.weight = t.weight
		mb.prio = c.m.priority(t.zone, t.region)
		mb.zone, mb.region = t.zone, t.region
		members = append(members, mb)
	}
	c.members = members
	c.built = true
	c.reconcileHealthLocked()
	c.rebuildLocked(now)
	c.armLocked(now)
	c.mu.Unlock()
}

// stop ends the cluster's background work: health checkers and timers.
// Its last snapshot keeps serving requests that still hold it.
func (c *Cluster) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	c.stopHealthLocked()
	if c.timer != nil {
		c.timer.Stop()
	}
}

// has reports whether mb is still one of c's members. c.mu held.
func (c *Cluster) has(mb *member) bool { return slices.Contains(c.members, mb) }

// rebuildLocked publishes a new snapshot. c.mu held.
func (c *Cluster) rebuildLocked(now time.Time) {
	eps := make([]*endpoint, len(c.members))
	for i, mb := range c.members {
		eps[i] = mb.ep
	}
	st := &clusterState{
		eps:     eps,
		members: c.members,
		keys:    c.keys,
		breaker: c.breaker,
		outlier: c.outlier,
	}
	if p := c.distributeLocked(now); p != nil {
		st.picker = p
	} else {
		chosen, panicking := c.selectLocked()
		st.panic = panicking
		if len(chosen) > 0 {
			st.picker = newPicker(c.lb.Policy, chosen, c.weightsLocked(chosen, now))
		}
	}
	c.state.Store(st)
}

// weightsLocked returns the effective weights of ms: the endpoint weight,
// times 1000, ramped linearly from 10% to 100% over the slow-start window
// for endpoints that are new or came back healthy (RoundRobin, Random and
// LeastRequest; hash policies keep full weights so keys do not move).
func (c *Cluster) weightsLocked(ms []*member, now time.Time) []uint64 {
	ws := make([]uint64, len(ms))
	window := time.Duration(c.lb.SlowStart)
	hashed := c.lb.Policy == ir.LBRingHash || c.lb.Policy == ir.LBMaglev
	for i, mb := range ms {
		ws[i] = mb.weight * 1000
		if window <= 0 || hashed || mb.rampFrom.IsZero() {
			continue
		}
		if el := now.Sub(mb.rampFrom); el < window {
			permille := max(uint64(el*1000/window), 100)
			ws[i] = mb.weight * permille
		}
	}
	return ws
}

// slowStarting reports whether some member's weight is still ramping.
// c.mu held.
func (c *Cluster) slowStartingLocked(now time.Time) bool {
	window := time.Duration(c.lb.SlowStart)
	if window <= 0 {
		return false
	}
	for _, mb := range c.members {
		if !mb.rampFrom.IsZero() && now.Sub(mb.rampFrom) < window {
			return true
		}
	}
	return false
}

// armLocked schedules the next timed change: an ejection ending, an
// ejection count decaying, a slow-start step. c.mu held.
func (c *Cluster) armLocked(now time.Time) {
	if c.stopped {
		return
	}
	var next time.Time
	sooner := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if c.slowStartingLocked(now) {
		sooner(now.Add(max(time.Duration(c.lb.SlowStart)/20, 10*time.Millisecond)))
	}
	for _, mb := range c.members {
		switch {
		case mb.ejected:
			sooner(mb.until)
		case mb.ejections > 0:
			sooner(mb.decayAt)
		}
	}
	if next.IsZero() {
		if c.timer != nil {
			c.timer.Stop()
		}
		return
	}
	d := max(next.Sub(now), time.Millisecond)
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.tick)
	} else {
		c.timer.Reset(d)
	}
}

// tick applies the timed changes that are due.
func (c *Cluster) tick() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	var returned []*member
	for _, mb := range c.members {
		if mb.ejected && !now.Before(mb.until) {
			mb.ejected = false
			returned = append(returned, mb)
		}
	}
	for _, mb := range c.members {
		if !mb.ejected && mb.ejections > 0 && !now.Before(mb.decayAt) {
			mb.ejections--
			mb.decayAt = now.Add(c.outlierInterval())
		}
	}
	c.rebuildLocked(now)
	c.armLocked(now)
	c.mu.Unlock()
	for _, mb := range returned {
		c.event(mb, EventReturned)
	}
}

// event logs and reports an endpoint event; called without c.mu.
func (c *Cluster) event(mb *member, ev string) {
	c.m.opts.Logger.Info("upstream endpoint "+ev, "cluster", c.name, "endpoint", mb.ep.addr)
	if f := c.m.opts.OnEndpointEvent; f != nil {
		f(c.name, mb.ep.addr, ev)
	}
}

// tracker accounts for one request in flight until its response ends.
type tracker struct {
	m    *member
	b    *breaker
	conn bool // holds a connection slot
}

// done ends the request's accounting; it runs once, later calls do
// nothing.
func (t *tracker) done() {
	if t.b == nil {
		return
	}
	if t.m != nil {
		t.m.active.Add(-1)
	}
	t.b.release(t.conn)
	*t = tracker{}
}

// emptyBody is the Body of responses without one, per endpoint so that
// EndpointOf can tell which answered without an allocation. Stateless, like
// http.NoBody.
type emptyBody struct{ addr string }

func (*emptyBody) Read([]byte) (int, error) { return 0, io.EOF }
func (*emptyBody) Close() error             { return nil }

// wrappedBody is the Body of h2c responses: it ends the request's
// accounting and names the endpoint.
type wrappedBody struct {
	rc   io.ReadCloser
	ep   *endpoint
	tr   tracker
	once sync.Once
}

func (b *wrappedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil {
		b.finish()
	}
	return n, err
}

func (b *wrappedBody) Close() error {
	err := b.rc.Close()
	b.finish()
	return err
}

func (b *wrappedBody) finish() { b.once.Do(b.tr.done) }

// EndpointOf returns the address of the endpoint ("IP:port" or a unix
// socket path) that produced resp, a response returned by Cluster.RoundTrip;
// "" for other responses. For access logs: it does not allocate.
func EndpointOf(resp *http.Response) string {
	if resp == nil {
		return ""
	}
	switch b := resp.Body.(type) {
	case *respBody:
		return b.c.ep.addr
	case *upgraded:
		return b.c.ep.addr
	case *emptyBody:
		return b.addr
	case *wrappedBody:
		return b.ep.addr
	}
	return ""
}

// priority ranks an endpoint's locality against the proxy's own.
func (m *Manager) priority(zone, region string) int {
	o := &m.opts
	switch {
	case o.Zone == "" && o.Region == "":
		return 0
	case o.Zone != "" && zone == o.Zone && (o.Region == "" || region == "" || region == o.Region):
		return 0
	case o.Region != "" && region == o.Region:
		return 1
	}
	return 2
}
