package proxy

import (
	"errors"
	"fmt"
	"time"

	"causeway.dev/causeway/internal/filter/cors"
	"causeway.dev/causeway/internal/filter/headers"
	"causeway.dev/causeway/internal/filter/redirect"
	"causeway.dev/causeway/internal/filter/rewrite"
	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/l4"
	"causeway.dev/causeway/internal/route"
	"causeway.dev/causeway/internal/telemetry"
	"causeway.dev/causeway/internal/upstream"
)

// graph is the compiled, immutable configuration of one listener. A request
// loads it once and uses nothing else of the configuration, so an Apply
// never changes a request half way.
type graph struct {
	table    *route.Table[*routeEntry]
	scheme   string // downstream scheme, "http" or "https"
	port     int    // listener port, for redirects
	gateway  string // first Gateway of the listener, for unmatched requests
	noRoute  *telemetry.RouteStats
	forwards []string    // X-Forwarded-Proto value, shared read-only
	client   *clientCert // X-Forwarded-Client-Cert (xfcc.go); nil: removed only
	sni      *sniMap     // misdirected-request check (misdirected.go); nil: none
}

// routeEntry is everything a request matched to one ir.Route needs,
// precomputed.
type routeEntry struct {
	name, gateway string
	reqHeaders    *headers.Modifier
	respHeaders   *headers.Modifier
	redirect      *redirect.Redirect
	rewrite       *rewrite.Rewrite
	backends      []backendEntry
	cum           []int32 // cumulative weights of backends
	total         int32
	timeout       time.Duration // smallest of the request and backend timeouts; 0: none
	mirrors       []mirrorEntry
	stats         *telemetry.RouteStats // answers given without a backend
	grpc          bool                  // ir.Route.GRPC: local replies are gRPC statuses
	retry         *retryPolicy          // nil: one attempt (retry.go)
	fault         *faultPolicy          // nil: no fault injection (fault.go)
	cors          *cors.Policy          // nil: none (cors.go)
	backendCORS   bool                  // some backend has its own cors
}

// backendEntry is one weighted destination of a route.
type backendEntry struct {
	name        string
	cluster     string
	c           *upstream.Cluster // nil: invalid backend, answered 500
	reqHeaders  *headers.Modifier
	respHeaders *headers.Modifier
	stats       *telemetry.RouteStats
	budget      *retryBudget // the cluster's retry budget, when the route retries
	cors        *cors.Policy // nil: the route's (cors.go)
}

// mirrorEntry is one mirror of a route, sampled at num/den.
type mirrorEntry struct {
	cluster  string
	c        *upstream.Cluster
	num, den uint32
}

// compiled is the result of compiling a whole ir.Config: one graph per
// listener name, and every route entry, whose clusters are resolved once
// the upstream manager holds the new clusters.
type compiled struct {
	graphs  map[string]*graph
	certs   map[string]*certSet
	entries []*routeEntry
	l4      map[string]*l4.Table // TLS, TCP and UDP listeners (l4.go)
}

// compile builds the graphs of cfg without side effects on the running
// proxy. Errors name the listener and route.
func (p *Proxy) compile(cfg *ir.Config) (*compiled, error) {
	clusters := make(map[string]bool, len(cfg.Clusters))
	for _, c := range cfg.Clusters {
		if c == nil || c.Name == "" {
			return nil, errors.New("cluster with empty name")
		}
		clusters[c.Name] = true
	}
	out := &compiled{graphs: map[string]*graph{}, certs: map[string]*certSet{}, l4: map[string]*l4.Table{}}
	for _, l := range cfg.Listeners {
		if l == nil {
			continue
		}
		if _, dup := out.graphs[l.Name]; dup {
			return nil, fmt.Errorf("listener %s: duplicate name", l.Name)
		}
		if l.Port < 0 || l.Port > 65535 {
			return nil, fmt.Errorf("listener %s: invalid port %d", l.Name, l.Port)
		}
		if isL4(l.Protocol) {
			if err := compileL4(out, l, clusters); err != nil {
				return nil, err
			}
			continue
		}
		g := &graph{scheme: "http", port: l.Port}
		switch l.Protocol {
		case ir.ProtocolHTTP:
		case ir.ProtocolHTTPS:
			g.scheme = "https"
			cs, err := compileCerts(l.TLS)
			if err != nil {
				return nil, fmt.Errorf("listener %s: %w", l.Name, err)
			}
			out.certs[l.Name] = cs
			if g.sni, err = compileMisdirect(l); err != nil {
				return nil, fmt.Errorf("listener %s: %w", l.Name, err)
			}
		default:
			return nil, fmt.Errorf("listener %s: unknown protocol %q", l.Name, l.Protocol)
		}
		g.forwards = []string{g.scheme}
		if err := checkSettings(l.Settings); err != nil {
			return nil, fmt.Errorf("listener %s: %w", l.Name, err)
		}
		client, err := compileClientCert(l)
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", l.Name, err)
		}
		g.client = client
		if len(l.Gateways) > 0 {
			g.gateway = l.Gateways[0]
		}
		g.noRoute = p.opts.Metrics.Route(g.gateway, "", "")
		t, err := route.Compile(l.VirtualHosts, func(vh *ir.VirtualHost, r *ir.Route) (*routeEntry, error) {
			e, err := p.compileRoute(vh, r, clusters)
			if err == nil {
				out.entries = append(out.entries, e)
			}
			return e, err
		})
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", l.Name, err)
		}
		g.table = t
		out.graphs[l.Name] = g
	}
	return out, nil
}

// compileRoute builds the entry of one route; its clusters are checked to
// exist in the configuration but resolved later (resolve).
func (p *Proxy) compileRoute(vh *ir.VirtualHost, r *ir.Route, clusters map[string]bool) (*routeEntry, error) {
	e := &routeEntry{
		name:        r.Name,
		gateway:     vh.Gateway,
		reqHeaders:  headers.Compile(r.RequestHeaders),
		respHeaders: headers.Compile(r.ResponseHeaders),
		stats:       p.opts.Metrics.Route(vh.Gateway, r.Name, ""),
		grpc:        r.GRPC,
	}
	var err error
	if r.Redirect != nil {
		if e.redirect, err = redirect.New(r.Redirect, r.Match.Path); err != nil {
			return nil, err
		}
	}
	if r.Rewrite != nil {
		if e.rewrite, err = rewrite.New(r.Rewrite, r.Match.Path); err != nil {
			return nil, err
		}
	}
	for _, b := range r.Backends {
		if b == nil {
			continue
		}
		if b.Weight < 0 {
			return nil, fmt.Errorf("backend %s: negative weight", b.Name)
		}
		if b.Cluster != "" && !clusters[b.Cluster] {
			return nil, fmt.Errorf("backend %s: unknown cluster %q", b.Name, b.Cluster)
		}
		e.total += b.Weight
		if e.total < 0 {
			return nil, errors.New("backend weights overflow")
		}
		e.cum = append(e.cum, e.total)
		e.backends = append(e.backends, backendEntry{
			name:        b.Name,
			cluster:     b.Cluster,
			reqHeaders:  headers.Compile(b.RequestHeaders),
			respHeaders: headers.Compile(b.ResponseHeaders),
			stats:       p.opts.Metrics.Route(vh.Gateway, r.Name, b.Name),
		})
	}
	for _, m := range r.Mirrors {
		if m == nil {
			continue
		}
		if !clusters[m.Cluster] {
			return nil, fmt.Errorf("mirror: unknown cluster %q", m.Cluster)
		}
		me := mirrorEntry{cluster: m.Cluster, num: 1, den: 1}
		if m.Denominator > 0 {
			if m.Numerator < 0 {
				return nil, errors.New("mirror: negative numerator")
			}
			me.num, me.den = uint32(m.Numerator), uint32(m.Denominator)
		}
		if me.num == 0 {
			continue
		}
		e.mirrors = append(e.mirrors, me)
	}
	if r.Timeouts.Request < 0 || r.Timeouts.BackendRequest < 0 {
		return nil, errors.New("negative timeout")
	}
	e.timeout = time.Duration(r.Timeouts.Request)
	if e.retry, err = compileRetry(p, r, e); err != nil {
		return nil, err
	}
	if e.fault, err = compileFault(r.Fault); err != nil {
		return nil, err
	}
	if err = compileCORS(e, r); err != nil {
		return nil, err
	}
	p.resolveRetry(e)
	b := time.Duration(r.Timeouts.BackendRequest)
	switch {
	case e.retry != nil && b > 0:
		// backendRequest bounds each attempt, not their sum.
		if e.retry.perTry == 0 || b < e.retry.perTry {
			e.retry.perTry = b
		}
	case b > 0 && (e.timeout == 0 || b < e.timeout):
		e.timeout = b
	}
	return e, nil
}

// resolve points every backend and mirror at its upstream cluster. It runs
// after Manager.Update and before the graphs are published.
func (c *compiled) resolve(m *upstream.Manager) {
	c.resolveL4(m)
	for _, e := range c.entries {
		for i := range e.backends {
			if b := &e.backends[i]; b.cluster != "" {
				b.c = m.Cluster(b.cluster)
			}
		}
		for i := range e.mirrors {
			e.mirrors[i].c = m.Cluster(e.mirrors[i].cluster)
		}
	}
}
