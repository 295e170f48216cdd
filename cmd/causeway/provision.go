package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/client-go/rest"

	"causeway.dev/causeway/internal/admin"
	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/leader"
	"causeway.dev/causeway/internal/provider/kube"
	"causeway.dev/causeway/internal/provision"
	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
	"causeway.dev/causeway/internal/translate"
)

// runProvisioner is `causeway controller --provision=deployment`: the
// Gateways' proxies run in Deployments of their own, configured by `causeway
// control`, which also writes the Gateways' status (its Programmed follows
// the proxies). This process serves no traffic and writes no status: it
// translates to learn which Gateways are accepted, and the leader
// provisions their proxies.
func runProvisioner(prov *kube.Provider, pv *provision.Provisioner, cfg *rest.Config, le leader.Flags, class, adminAddr string, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if class != "" {
		if err := ensureClass(ctx, cfg, class, log); err != nil {
			return err
		}
	}
	src := &provisionSource{}
	adm := admin.New(src, admin.Options{Addr: adminAddr, Logger: log})
	if err := adm.Start(); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	elector, err := le.Elector(cfg, log)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	defer func() { stop(); <-done }()
	go func() {
		defer close(done)
		if elector == nil {
			_ = pv.Run(ctx)
		} else if err := elector.Run(ctx, func(ctx context.Context) { _ = pv.Run(ctx) }); err != nil {
			log.Warn("leader election", "error", err)
		}
	}()
	err = prov.Run(ctx, func(snap *resource.Snapshot) {
		cfg, rep := translate.Translate(snap, translate.Options{})
		src.cfg.Store(cfg)
		src.rep.Store(rep)
		pv.Update(snap, rep, nil)
	})
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = adm.Shutdown(sctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// provisionSource shows the translation in the admin API; ready once the
// first snapshot is translated.
type provisionSource struct {
	cfg atomic.Pointer[ir.Config]
	rep atomic.Pointer[status.Report]
}

func (s *provisionSource) Config() *ir.Config     { return s.cfg.Load() }
func (s *provisionSource) Status() *status.Report { return s.rep.Load() }
func (s *provisionSource) Ready() bool            { return s.cfg.Load() != nil }
