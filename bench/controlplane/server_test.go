package controlplane

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/push"
)

// serverEnv makes the test binary a control plane: "GATEWAYS,ROUTES,CAFILE".
const serverEnv = "CAUSEWAY_BENCH_CONTROL"

// fleetConfig has gateways listeners ("ns/gwN"), routes routes in all,
// spread evenly, each with its own cluster. tag is in the path of the
// first route of gateway 0, so that configurations differ by one route.
func fleetConfig(gateways, routes int, tag string) *ir.Config {
	cfg := &ir.Config{}
	for g := range gateways {
		gw := fmt.Sprintf("ns/gw%d", g)
		vh := &ir.VirtualHost{Domain: "*", Gateway: gw}
		for r := g; r < routes; r += gateways {
			cl := fmt.Sprintf("service/ns/svc%d/8080", r)
			path := fmt.Sprintf("/svc%d", r)
			if r == 0 {
				path = "/svc0/" + tag
			}
			vh.Routes = append(vh.Routes, &ir.Route{Name: fmt.Sprintf("httproute/ns/r%d/rule/0/match/0", r),
				Match:    ir.Match{Path: ir.PathMatch{Type: ir.PathPrefix, Value: path}},
				Backends: []*ir.Backend{{Cluster: cl, Weight: 1, Name: cl}}})
			cfg.Clusters = append(cfg.Clusters, &ir.Cluster{Name: cl, Protocol: ir.UpstreamHTTP1,
				Endpoints: []ir.Endpoint{{Address: fmt.Sprintf("10.%d.%d.%d:8080", r>>16&255, r>>8&255, r&255)},
					{Address: fmt.Sprintf("10.%d.%d.%d:8081", r>>16&255, r>>8&255, r&255)}}})
		}
		cfg.Listeners = append(cfg.Listeners, &ir.Listener{Name: fmt.Sprintf("0.0.0.0:%d", 10000+g), Port: 10000 + g,
			Protocol: ir.ProtocolHTTP, VirtualHosts: []*ir.VirtualHost{vh}, Gateways: []string{gw}})
	}
	cfg.Finalize()
	return cfg
}

// serverStats is what the control-plane process reports of itself.
type serverStats struct {
	HeapInuse  uint64  `json:"heapInuse"`
	PeakRSS    uint64  `json:"peakRSS"`
	CPUSeconds float64 `json:"cpuSeconds"`
	BytesSent  int64   `json:"bytesSent"`
	Goroutines int     `json:"goroutines"`
	StackInuse uint64  `json:"stackInuse"`
	Sys        uint64  `json:"sys"`
}

// runServer is the control-plane process: it prints "addr ADDR", then
// answers "prepare TAG" (build the configuration with that tag) and
// "change" (hand it to the server) with "ok", and "stats" with a JSON
// serverStats.
func runServer(spec string) {
	f := strings.Split(spec, ",")
	gateways, _ := strconv.Atoi(f[0])
	routes, _ := strconv.Atoi(f[1])
	ca, err := push.NewCA()
	if err != nil {
		panic(err)
	}
	tlsCfg, err := ca.ServerTLS([]string{"127.0.0.1"})
	if err != nil {
		panic(err)
	}
	if err := os.WriteFile(f[2], ca.CertPEM, 0o600); err != nil {
		panic(err)
	}
	tok, _ := push.ParseTokens(strings.NewReader("bench ns/*\n"))
	srv := push.NewServer(push.Options{Tokens: tok, Logger: slog.New(slog.DiscardHandler)})
	srv.Update(fleetConfig(gateways, routes, "initial"), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	cl := &countingListener{Listener: ln}
	g := grpc.NewServer(append(push.ServerOptions(), grpc.Creds(credentials.NewTLS(tlsCfg)))...)
	srv.Register(g)
	go func() { _ = g.Serve(cl) }()
	fmt.Printf("addr %s\n", ln.Addr())
	sc := bufio.NewScanner(os.Stdin)
	var next *ir.Config
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "prepare": // what the translator would do, outside the measure
			next = fleetConfig(gateways, routes, arg)
			runtime.GC() // the translator's garbage is not the push path's
			fmt.Println("ok")
		case "change":
			srv.Update(next, nil)
			fmt.Println("ok")
		case "heap": // a heap profile (allocations since start) to arg
			f, err := os.Create(arg)
			if err == nil {
				err = pprof.Lookup("allocs").WriteTo(f, 0)
				_ = f.Close()
			}
			if err != nil {
				panic(err)
			}
			fmt.Println("ok")
		case "stats":
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			var ru syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			st := serverStats{HeapInuse: ms.HeapInuse, PeakRSS: peakRSS(),
				CPUSeconds: tv(ru.Utime) + tv(ru.Stime), BytesSent: cl.sent.Load(), Goroutines: runtime.NumGoroutine(),
				StackInuse: ms.StackInuse, Sys: ms.Sys}
			b, _ := json.Marshal(st)
			fmt.Println(string(b))
		}
	}
	os.Exit(0)
}

// peakRSS is this process's VmHWM. Not getrusage's ru_maxrss: Linux
// carries that across execve, so a child spawned by the benchmark process
// reported the parent's peak (its simulated fleet of the previous run)
// whenever that was larger: the "1.6 GB at 5,000 proxies" of the first
// figures.
func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// countingListener counts the bytes the server writes to proxies (TLS
// records included).
type countingListener struct {
	net.Listener
	sent atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, sent: &l.sent}, nil
}

type countingConn struct {
	net.Conn
	sent *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.sent.Add(int64(n))
	return n, err
}
