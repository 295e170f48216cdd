// Package provider defines how configuration sources feed the control
// plane: a Provider watches a source (files, later Kubernetes) and hands each
// new consistent resource.Snapshot to the translator. It is the first stage
// of the data flow: source → provider → translator → IR → proxy.
package provider

import (
	"context"

	"causeway.dev/causeway/internal/resource"
)

// Provider watches a source and calls publish with each new consistent
// Snapshot. Delivery is latest-wins: when snapshots come faster than publish
// returns, intermediate ones may be skipped, but the last one is always
// delivered. publish is called from one goroutine at a time, never
// concurrently; the snapshots it receives are immutable.
//
// Run returns when ctx ends (after the publish in progress, if any, has
// returned), or earlier with an error if the source cannot be read at all.
type Provider interface {
	Run(ctx context.Context, publish func(*resource.Snapshot)) error
}
