// Package examples embeds the example configurations, so that
// `causeway quickstart` runs with nothing else on disk.
package examples

import "embed"

// Quickstart is examples/quickstart: a Gateway, HTTPRoutes and the demo
// backends they send to.
//
//go:embed quickstart/*.yaml
var Quickstart embed.FS
