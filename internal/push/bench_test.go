package push

import (
	"fmt"
	"log/slog"
	"testing"

	"causeway.dev/causeway/internal/ir"
)

// BenchmarkPublish: one route change in 10,000 routes over 100 Gateways,
// cut into resources and filtered for 100 proxy groups.
func BenchmarkPublish(b *testing.B) {
	cfgs := [2]*ir.Config{fleetConfig(100, 100, "a"), fleetConfig(100, 100, "b")}
	s := NewServer(Options{Tokens: &Tokens{}, Logger: slog.New(slog.DiscardHandler)})
	defer s.Close()
	for g := range 100 {
		gws := []string{fmt.Sprintf("ns/gw%d", g)}
		s.groups[groupKey(gws)] = &group{gateways: gws, conns: map[*conn]struct{}{}}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.publish(cfgs[i%2], nil)
	}
}

// BenchmarkFleetConfig is the cost of building and hashing the benchmark's
// configuration, for comparison with BenchmarkPublish.
func BenchmarkFleetConfig(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		fleetConfig(100, 100, "a")
	}
}
