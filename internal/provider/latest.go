package provider

import (
	"context"
	"sync"

	"causeway.dev/causeway/internal/resource"
)

// Latest is a one-slot mailbox that coalesces snapshots: Put replaces what
// has not been delivered yet, so a slow consumer only ever sees the newest.
// Providers use it to implement the latest-wins contract of Provider.
type Latest struct {
	mu    sync.Mutex
	snap  *resource.Snapshot
	ready chan struct{}
}

// NewLatest returns an empty mailbox.
func NewLatest() *Latest { return &Latest{ready: make(chan struct{}, 1)} }

// Put makes s the next snapshot to deliver, replacing any undelivered one.
// It never blocks.
func (l *Latest) Put(s *resource.Snapshot) {
	l.mu.Lock()
	l.snap = s
	l.mu.Unlock()
	select {
	case l.ready <- struct{}{}:
	default:
	}
}

// Deliver calls publish with the newest snapshot put, each time one is, until ctx
// ends; it returns after the publish in progress has returned. Snapshots
// still waiting when ctx ends are dropped.
func (l *Latest) Deliver(ctx context.Context, publish func(*resource.Snapshot)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.ready:
		}
		l.mu.Lock()
		s := l.snap
		l.snap = nil
		l.mu.Unlock()
		if s != nil && ctx.Err() == nil {
			publish(s)
		}
	}
}
