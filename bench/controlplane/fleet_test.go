package controlplane

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "causeway.dev/causeway/api/push/v1alpha1"
	"causeway.dev/causeway/internal/agent"
	"causeway.dev/causeway/internal/ir"
)

var (
	proxiesFlag  = flag.String("proxies", "100,1000", "fleet sizes to benchmark, comma-separated")
	gatewaysFlag = flag.Int("gateways", 100, "Gateways (one listener each); proxy i serves gateway i mod this")
	routesFlag   = flag.Int("routes", 10000, "routes in all, each with its own cluster")
	heapFlag     = flag.String("cp-heap", "", "write the control plane's allocation profile here after the initial sync")
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(serverEnv); spec != "" {
		runServer(spec)
	}
	os.Exit(m.Run())
}

// controlPlane is the child process.
type controlPlane struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	addr string
	ca   string
}

func startControlPlane(tb testing.TB, gateways, routes int) *controlPlane {
	tb.Helper()
	ca := filepath.Join(tb.TempDir(), "ca.pem")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,%d,%s", serverEnv, gateways, routes, ca))
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	outR, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	cp := &controlPlane{cmd: cmd, in: in, out: bufio.NewScanner(outR), ca: ca}
	tb.Cleanup(func() { _ = in.Close(); _ = cmd.Wait() })
	line := cp.line(tb)
	addr, ok := strings.CutPrefix(line, "addr ")
	if !ok {
		tb.Fatalf("control plane said %q", line)
	}
	cp.addr = addr
	return cp
}

func (cp *controlPlane) line(tb testing.TB) string {
	if !cp.out.Scan() {
		tb.Fatalf("control plane exited: %v", cp.out.Err())
	}
	return cp.out.Text()
}

func (cp *controlPlane) do(tb testing.TB, cmd string) {
	fmt.Fprintln(cp.in, cmd)
	if l := cp.line(tb); l != "ok" {
		tb.Fatalf("%s: %q", cmd, l)
	}
}

func (cp *controlPlane) stats(tb testing.TB) serverStats {
	fmt.Fprintln(cp.in, "stats")
	var st serverStats
	if err := json.Unmarshal([]byte(cp.line(tb)), &st); err != nil {
		tb.Fatal(err)
	}
	return st
}

// sim is a simulated fleet: agents whose Apply records what arrives.
type sim struct {
	cp      *controlPlane
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	applies []atomic.Int64 // per proxy
	// seen receives (proxy, tag, time) when a gateway-0 proxy applies a
	// configuration with a new tag.
	seen chan applied
}

type applied struct {
	proxy int
	tag   string
	at    time.Time
}

func startFleet(tb testing.TB, proxies, gateways, routes int) *sim {
	tb.Helper()
	cp := startControlPlane(tb, gateways, routes)
	caPEM, err := os.ReadFile(cp.ca)
	if err != nil {
		tb.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	ctx, cancel := context.WithCancel(context.Background())
	s := &sim{cp: cp, cancel: cancel, applies: make([]atomic.Int64, proxies), seen: make(chan applied, proxies*4)}
	tb.Cleanup(s.stop)
	var ready sync.WaitGroup
	for i := range proxies {
		ready.Add(1)
		var first sync.Once
		gw := i % gateways
		ag, err := agent.New(agent.Options{
			Addrs: []string{cp.addr},
			Node: &pb.Node{Id: fmt.Sprintf("proxy-%d", i), Role: "gateway", Token: "bench",
				Gateways: []string{fmt.Sprintf("ns/gw%d", gw)}},
			TLS:    &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			Logger: slog.New(slog.DiscardHandler),
			Apply: func(cfg *ir.Config) error {
				s.applies[i].Add(1)
				first.Do(ready.Done)
				if gw == 0 {
					p := cfg.Listeners[0].VirtualHosts[0].Routes[0].Match.Path.Value
					s.seen <- applied{proxy: i, tag: strings.TrimPrefix(p, "/svc0/"), at: time.Now()}
				}
				return nil
			},
		})
		if err != nil {
			tb.Fatal(err)
		}
		s.wg.Add(1)
		go func() { defer s.wg.Done(); _ = ag.Run(ctx) }()
	}
	done := make(chan struct{})
	go func() { ready.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		tb.Fatal("fleet not synced within 5 minutes")
	}
	s.drain()
	return s
}

// drain empties seen.
func (s *sim) drain() {
	for {
		select {
		case <-s.seen:
		default:
			return
		}
	}
}

func (s *sim) stop() {
	s.cancel()
	s.wg.Wait()
}

// change makes one route change and returns each concerned proxy's
// latency from the control plane's receiving the new IR to the proxy's
// applying it (its ACK follows at once): debounce (100ms), cutting the IR
// into resources, filtering, streaming, decoding, assembling.
func (s *sim) change(tb testing.TB, tag string, concerned int) []time.Duration {
	if b, ok := tb.(*testing.B); ok {
		b.StopTimer()
		s.cp.do(tb, "prepare "+tag)
		b.StartTimer()
	} else {
		s.cp.do(tb, "prepare "+tag)
	}
	start := time.Now()
	s.cp.do(tb, "change")
	var lat []time.Duration
	timeout := time.After(time.Minute)
	for len(lat) < concerned {
		select {
		case a := <-s.seen:
			if a.tag == tag {
				lat = append(lat, a.at.Sub(start))
			}
		case <-timeout:
			tb.Fatalf("%d of %d proxies applied change %s within a minute", len(lat), concerned, tag)
		}
	}
	return lat
}

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// TestSmallFleet checks the simulation itself: a change reaches the
// concerned proxies and only them.
func TestSmallFleet(t *testing.T) {
	s := startFleet(t, 20, 5, 200)
	lat := s.change(t, "x1", 4)
	if len(lat) != 4 {
		t.Fatalf("%d proxies applied", len(lat))
	}
	s.change(t, "x2", 4)
	for i := range s.applies {
		want := int64(1)
		if i%5 == 0 {
			want = 3
		}
		if got := s.applies[i].Load(); got != want {
			t.Errorf("proxy %d applied %d configurations, want %d", i, got, want)
		}
	}
}

// BenchmarkRouteChange: one route change in a fleet, until every concerned
// proxy applied it. Metrics: p50/p99 of per-proxy latency, the slowest
// proxy's latency (all-acked), control-plane CPU and bytes per change, and
// the control plane's memory with the fleet connected.
func BenchmarkRouteChange(b *testing.B) {
	for _, ps := range strings.Split(*proxiesFlag, ",") {
		n, err := strconv.Atoi(ps)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("proxies=%d/routes=%d", n, *routesFlag), func(b *testing.B) {
			gateways := min(*gatewaysFlag, n)
			setup := time.Now()
			s := startFleet(b, n, gateways, *routesFlag)
			syncTime := time.Since(setup)
			concerned := (n + gateways - 1) / gateways
			if *heapFlag != "" {
				s.cp.do(b, "heap "+*heapFlag)
			}
			s0 := s.cp.stats(b)
			var all, worst []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				lat := s.change(b, fmt.Sprintf("c%d", i), concerned)
				all = append(all, lat...)
				worst = append(worst, slices.Max(lat))
			}
			b.StopTimer()
			s1 := s.cp.stats(b)
			b.ReportMetric(float64(pct(all, 0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(pct(all, 0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(pct(worst, 0.99).Microseconds())/1000, "all-acked-p99-ms")
			b.ReportMetric(float64(s1.BytesSent-s0.BytesSent)/float64(b.N), "cp-bytes/change")
			b.ReportMetric((s1.CPUSeconds-s0.CPUSeconds)/float64(b.N), "cp-cpu-s/change")
			b.ReportMetric(float64(s1.HeapInuse)/(1<<20), "cp-heap-MiB")
			b.ReportMetric(float64(s1.PeakRSS)/(1<<20), "cp-peak-rss-MiB")
			b.Logf("proxies=%d gateways=%d routes=%d concerned=%d: initial sync %v, cp bytes for the sync %d, cp CPU for the sync %.2fs, goroutines %d, stacks %d MiB, sys %d MiB",
				n, gateways, *routesFlag, concerned, syncTime.Round(time.Millisecond), s0.BytesSent, s0.CPUSeconds, s1.Goroutines,
				s1.StackInuse>>20, s1.Sys>>20)
		})
	}
}
