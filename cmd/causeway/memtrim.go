package main

import (
	"context"
	"log/slog"
	"time"

	"causeway.dev/causeway/internal/memtrim"
)

// releaseStartupPages waits until ready reports that the first
// configuration is served, then gives back the executable's pages that
// only start-up touched (see internal/memtrim). --release-startup-pages=false
// keeps them.
func releaseStartupPages(ctx context.Context, f gatewayFlags, ready func() bool, log *slog.Logger) {
	if !f.releasePages {
		return
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !ready() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	r, err := memtrim.Release()
	if err != nil {
		log.Warn("could not release start-up pages", "err", err)
		return
	}
	if !r.Unsupported {
		log.Info("released the executable's start-up pages", "mappings", r.Mappings,
			"rss_before_kib", r.RSSBefore>>10, "rss_after_kib", r.RSSAfter>>10)
	}
}
