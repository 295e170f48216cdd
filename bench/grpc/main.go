// Command grpc is the load program of bench/grpc/run.sh: a grpc-go server
// (grpc.testing.TestService, in its own process so that its CPU is its own)
// and a grpc-go client that makes unary calls for a fixed time, either
// straight to the server or through a Causeway gateway, and prints what it
// measured as one line of key=value pairs.
//
//	grpc server -listen 127.0.0.1:50051
//	grpc load -target 127.0.0.1:8080 -c 2 -duration 5s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: grpc server|load [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = server(os.Args[2:])
	case "load":
		err = load(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc:", err)
		os.Exit(1)
	}
}

// service answers UnaryCall with a body of the requested size.
type service struct {
	testgrpc.UnimplementedTestServiceServer
	body []byte
}

func (s *service) UnaryCall(_ context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	n := min(int(req.GetResponseSize()), len(s.body))
	return &testgrpc.SimpleResponse{Payload: &testgrpc.Payload{Body: s.body[:n]}}, nil
}

func server(args []string) error {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	addr := fs.String("listen", "127.0.0.1:50051", "address to serve on")
	_ = fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(s, &service{body: make([]byte, 64<<10)})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() { <-ctx.Done(); s.Stop() }()
	if err := s.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	target := fs.String("target", "", "host:port to call (the server, or the gateway)")
	conc := fs.Int("c", 2, "concurrent callers, sharing one connection as grpc-go clients do")
	dur := fs.Duration("duration", 5*time.Second, "how long to call")
	size := fs.Int("size", 64, "request and response payload bytes")
	_ = fs.Parse(args)
	if *target == "" {
		return errors.New("load: -target is required")
	}
	cc, err := grpc.NewClient(*target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	defer cc.Close()
	tc := testgrpc.NewTestServiceClient(cc)
	req := &testgrpc.SimpleRequest{ResponseSize: int32(*size), Payload: &testgrpc.Payload{Body: make([]byte, *size)}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if _, err := tc.UnaryCall(ctx, req, grpc.WaitForReady(true)); err != nil { // connect first
		cancel()
		return fmt.Errorf("first call: %w", err)
	}
	cancel()

	var (
		errs  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		lats  []time.Duration
		start = time.Now()
		end   = start.Add(*dur)
	)
	ru0 := cpuTime()
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 1<<16)
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := tc.UnaryCall(cctx, req)
				ccancel()
				if err != nil {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - ru0
	slices.Sort(lats)
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return float64(lats[int(p*float64(len(lats)-1))].Microseconds()) / 1000
	}
	fmt.Printf("calls=%d errors=%d seconds=%.3f calls_per_s=%.0f p50_ms=%.3f p99_ms=%.3f client_cpu_s=%.3f\n",
		len(lats), errs.Load(), elapsed.Seconds(), float64(len(lats))/elapsed.Seconds(), pct(0.50), pct(0.99), cpu.Seconds())
	return nil
}

// cpuTime is the user and system CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
