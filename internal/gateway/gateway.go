// Package gateway runs the standalone mode: a file provider feeds the
// translator, whose IR is applied to the embedded proxy. It is the only place
// where the control-plane side (provider, translate) meets the data plane
// (proxy, upstream), and it keeps the last statuses for the admin API.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/provider/file"
	"causeway.dev/causeway/internal/proxy"
	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
	"causeway.dev/causeway/internal/translate"
	"causeway.dev/causeway/internal/upstream"
)

// Options configure a Gateway.
type Options struct {
	// ConfigDir holds the YAML resources.
	ConfigDir string
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
	provider  *file.Provider

	mu       sync.Mutex // serialises apply
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
	g.provider = file.New(file.Options{Dir: opts.ConfigDir, Logger: log})
	return g
}

// Run loads the configuration, applies it, and follows changes until ctx
// ends; then it drains (see Shutdown). The first configuration is applied
// before Run watches for changes; an error reading ConfigDir itself is fatal.
func (g *Gateway) Run(ctx context.Context) error {
	snap, err := g.provider.Load()
	if err != nil {
		return err
	}
	g.apply(snap)
	err = g.provider.Run(ctx, g.apply)
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
	cfg, report := translate.Translate(snap, g.opts.Translate)
	g.logProblems(report)
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
		for _, gw := range l.Gateways {
			ns, name, _ := strings.Cut(gw, "/")
			e := r.For(status.Ref{Kind: "Gateway", Namespace: ns, Name: name}, status.Source{})
			e.Conditions = status.Set(e.Conditions, status.Condition{
				Type: status.Programmed, Status: false, Reason: status.ReasonPortUnavailable,
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
