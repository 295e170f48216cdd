// Package gateway runs a gateway in one process: a provider (files, or a
// Kubernetes API server) feeds the translator, whose IR is applied to the
// embedded proxy, and whose statuses go to an optional sink (the Kubernetes
// status writer). It is the only place where the control-plane side
// (provider, translate) meets the data plane (proxy, upstream), and it keeps
// the last statuses for the admin API.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/provider"
	"causeway.dev/causeway/internal/provider/file"
	"causeway.dev/causeway/internal/proxy"
	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
	"causeway.dev/causeway/internal/translate"
	"causeway.dev/causeway/internal/upstream"
)

// Options configure a Gateway.
type Options struct {
	// ConfigDir holds the YAML resources; used when Provider is nil.
	ConfigDir string
	// Provider is the source of resources; nil means a file provider of
	// ConfigDir.
	Provider provider.Provider
	// Status receives every translation's report; nil means none.
	Status StatusSink
	// AddressPool holds the IPs given, one each, to Gateways without
	// spec.addresses (in-process Kubernetes mode); nil means such
	// Gateways bind all interfaces. An allocation is kept while its
	// Gateway exists.
	AddressPool []netip.Addr
	// Translate options; Addresses is set by the Gateway when AddressPool
	// is given.
	Translate translate.Options
	// Proxy options; Upstreams is filled in by New.
	Proxy    proxy.Options
	Upstream upstream.Options
	Logger   *slog.Logger
}

// Gateway is a running standalone gateway.
type Gateway struct {
	opts      Options
	log       *slog.Logger
	upstreams *upstream.Manager
	proxy     *proxy.Proxy
	provider  provider.Provider

	mu       sync.Mutex // serialises apply
	pool     *pool
	report   atomic.Pointer[status.Report]
	reported map[string]bool // problems already logged, to log each once
}

// New builds a Gateway; nothing listens until Run.
func New(opts Options) *Gateway {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	g := &Gateway{opts: opts, log: log, reported: map[string]bool{}}
	uo := opts.Upstream
	if uo.Logger == nil {
		uo.Logger = log // ejections and health changes belong in the gateway's log
	}
	g.upstreams = upstream.NewManager(uo)
	po := opts.Proxy
	po.Upstreams = g.upstreams
	po.Logger = log
	g.proxy = proxy.New(po)
	g.provider = opts.Provider
	if g.provider == nil {
		g.provider = file.New(file.Options{Dir: opts.ConfigDir, Logger: log})
	}
	if opts.AddressPool != nil {
		g.pool = newPool(opts.AddressPool)
	}
	return g
}

// StatusSink receives the report of each translation, with the snapshot it
// was computed from and the addresses each Gateway is served on (nil for
// a Gateway served on its spec.addresses).
type StatusSink interface {
	Update(snap *resource.Snapshot, rep *status.Report, addrs func(*gwv1.Gateway) []string)
}

// Run applies the provider's snapshots until ctx ends. A file provider's
// first configuration is loaded and applied before Run watches for changes;
// an error reading ConfigDir itself is fatal.
func (g *Gateway) Run(ctx context.Context) error {
	if fp, ok := g.provider.(*file.Provider); ok {
		snap, err := fp.Load()
		if err != nil {
			return err
		}
		g.apply(snap)
	}
	err := g.provider.Run(ctx, g.apply)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for requests in flight
// until ctx ends.
func (g *Gateway) Shutdown(ctx context.Context) error {
	err := g.proxy.Shutdown(ctx)
	g.upstreams.Close()
	return err
}

// Config is the IR being served (admin.Source).
func (g *Gateway) Config() *ir.Config { return g.proxy.Config() }

// Status is the report of the last translation (admin.Source).
func (g *Gateway) Status() *status.Report { return g.report.Load() }

// Ready reports whether a configuration is being served (admin.Source).
func (g *Gateway) Ready() bool { return g.proxy.Ready() }

// apply translates a snapshot and hands the IR to the proxy. Invalid
// resources were already dropped, one by one, by the translator; an IR the
// proxy refuses as a whole leaves the previous one serving.
func (g *Gateway) apply(snap *resource.Snapshot) {
	g.mu.Lock()
	defer g.mu.Unlock()
	topts := g.opts.Translate
	var addrs func(*gwv1.Gateway) []string
	if g.pool != nil {
		allocated := g.pool.assign(snap.Gateways)
		addrs = func(gw *gwv1.Gateway) []string {
			if len(gw.Spec.Addresses) > 0 {
				return nil
			}
			if a, ok := allocated[gw.Namespace+"/"+gw.Name]; ok {
				return []string{a}
			}
			return nil
		}
		topts.Addresses = addrs
	}
	cfg, report := translate.Translate(snap, topts)
	g.logProblems(report)
	if g.opts.Status != nil {
		defer func() { g.opts.Status.Update(snap, g.report.Load(), addrs) }()
	}
	if cur := g.proxy.Config(); cur != nil && cur.Version == cfg.Version {
		g.report.Store(report)
		return
	}
	g.upstreams.Update(cfg.Clusters)
	err := g.proxy.Apply(cfg)
	var bindErr *proxy.BindError
	switch {
	case err == nil:
		g.log.Info("configuration applied", "version", cfg.Version,
			"listeners", len(cfg.Listeners), "clusters", len(cfg.Clusters))
	case errors.As(err, &bindErr):
		markUnbound(report, cfg, bindErr)
		g.log.Error("configuration applied, but some listeners could not bind", "version", cfg.Version, "error", err)
	default:
		// Restore the clusters of the configuration still serving.
		if cur := g.proxy.Config(); cur != nil {
			g.upstreams.Update(cur.Clusters)
		}
		g.log.Error("configuration refused; the previous one keeps serving", "version", cfg.Version, "error", err)
		markRefused(report, err)
	}
	g.report.Store(report)
}

func (g *Gateway) logProblems(r *status.Report) {
	seen := map[string]bool{}
	for _, p := range r.Problems() {
		line := p.Error()
		seen[line] = true
		if !g.reported[line] {
			g.log.Warn("invalid configuration", "problem", line)
		}
	}
	g.reported = seen
}

// markUnbound sets Programmed=False on the Gateways whose sockets failed.
func markUnbound(r *status.Report, cfg *ir.Config, be *proxy.BindError) {
	for _, l := range cfg.Listeners {
		lerr, failed := be.Failed[l.Name]
		if !failed {
			continue
		}
		// An address that is not this host's is the Gateway's
		// spec.addresses at fault, not a port taken by someone else.
		reason := status.ReasonPortUnavailable
		if errors.Is(lerr, syscall.EADDRNOTAVAIL) {
			reason = status.ReasonAddressNotUsable
		}
		for _, gw := range l.Gateways {
			ns, name, _ := strings.Cut(gw, "/")
			e := r.For(status.Ref{Kind: "Gateway", Namespace: ns, Name: name}, status.Source{})
			e.Conditions = status.Set(e.Conditions, status.Condition{
				Type: status.Programmed, Status: false, Reason: reason,
				Message: fmt.Sprintf("cannot listen on %s: %v", l.Name, lerr),
			})
		}
	}
}

// markRefused records on every Gateway that the proxy refused the
// configuration, so that `validate` and /status show it.
func markRefused(r *status.Report, err error) {
	for _, e := range r.Resources {
		if e.Ref.Kind != "Gateway" {
			continue
		}
		e.Conditions = status.Set(e.Conditions, status.Condition{
			Type: status.Programmed, Status: false, Reason: status.ReasonInvalid,
			Message: "the proxy refused this configuration, the previous one keeps serving: " + err.Error(),
		})
	}
}
