// Package agent is the proxy side of the stream from the control plane
// (internal/push): it connects with TLS and a bootstrap token, receives the
// listeners and clusters of the Gateways it serves, assembles them into an
// ir.Config, hands that to the proxy runtime (Options.Apply) and
// acknowledges each version, or refuses it and keeps the last good one.
// When the control plane is unreachable the proxy keeps serving what it
// has; the agent reconnects with backoff and jitter, trying each address in
// turn, and resumes by telling the control plane what it already runs.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	pb "causeway.dev/causeway/api/push/v1alpha1"
	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/push"
)

// Options configure an Agent.
type Options struct {
	// Addrs are the control-plane replicas, host:port; required. The
	// agent starts at a random one and moves to the next on failure.
	Addrs []string
	// Node identifies the proxy (id, role, gateways, locality, token);
	// required, with an id and at least one gateway.
	Node *pb.Node
	// TLS secures the stream; nil means plaintext (tests only).
	TLS *tls.Config
	// Apply runs a configuration; required. It is called from one
	// goroutine at a time. When it fails, the agent applies the last good
	// configuration again (so that a partly applied one is undone) and
	// refuses the version.
	Apply func(*ir.Config) error
	// ListenAddress, when set, replaces every listener's address, so that
	// proxies on different hosts serve the same Gateway.
	ListenAddress string
	// BackoffBase and BackoffMax bound the wait between connection
	// attempts (exponential, full jitter); 0 means 100ms and 5s.
	BackoffBase, BackoffMax time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Agent keeps a proxy in sync with the control plane.
type Agent struct {
	opts Options
	log  *slog.Logger

	// Owned by Run's goroutine.
	held     map[string]entry
	lastGood *ir.Config

	mu        sync.Mutex
	version   string
	connected string // address of the current stream, "" when none
}

type entry struct {
	res      *pb.Resource
	listener *ir.Listener
	cluster  *ir.Cluster
}

// New checks opts and returns an Agent; nothing connects until Run.
func New(opts Options) (*Agent, error) {
	if len(opts.Addrs) == 0 {
		return nil, errors.New("agent: no control-plane address")
	}
	if opts.Node.GetId() == "" || len(opts.Node.GetGateways()) == 0 {
		return nil, errors.New("agent: node needs an id and at least one gateway")
	}
	if opts.Apply == nil {
		return nil, errors.New("agent: Apply is required")
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = 100 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Agent{opts: opts, log: opts.Logger, held: map[string]entry{}}, nil
}

// Version is the acknowledged version being served ("" before the first).
func (a *Agent) Version() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.version
}

// Connected returns the control-plane address of the live stream, or "".
func (a *Agent) Connected() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.connected
}

// Run connects and follows the control plane until ctx ends. It never
// gives up: the proxy keeps serving its last configuration meanwhile.
func (a *Agent) Run(ctx context.Context) error {
	i := rand.IntN(len(a.opts.Addrs))
	fails := 0
	for {
		addr := a.opts.Addrs[i%len(a.opts.Addrs)]
		got, err := a.session(ctx, addr)
		if ctx.Err() != nil {
			return nil
		}
		a.mu.Lock()
		a.connected = ""
		a.mu.Unlock()
		a.log.Warn("control plane stream ended; serving the last configuration", "addr", addr, "error", err)
		if got {
			fails = 0 // it worked: retry soon, and this replica first
		} else {
			fails++
			i++
		}
		d := min(a.opts.BackoffMax, a.opts.BackoffBase<<min(fails, 20))
		d = time.Duration(rand.Int64N(int64(d)) + 1) // full jitter spreads a fleet's reconnects
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
	}
}

// session runs one stream; got reports whether it got as far as a
// response, so that Run knows the replica works.
func (a *Agent) session(ctx context.Context, addr string) (got bool, err error) {
	creds := insecure.NewCredentials()
	if a.opts.TLS != nil {
		creds = credentials.NewTLS(a.opts.TLS)
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: push.KeepaliveTime, Timeout: push.KeepaliveTimeout}))
	if err != nil {
		return false, fmt.Errorf("dial: %w", err)
	}
	defer cc.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := pb.NewPushClient(cc).Stream(sctx, grpc.WaitForReady(false))
	if err != nil {
		return false, fmt.Errorf("open stream: %w", err)
	}
	first := &pb.Request{Node: a.opts.Node, Version: a.Version(), ResourceVersions: map[string]string{}}
	for n, e := range a.held {
		first.ResourceVersions[n] = e.res.Version
	}
	if err := stream.Send(first); err != nil {
		return false, fmt.Errorf("send node: %w", err)
	}
	a.mu.Lock()
	a.connected = addr
	a.mu.Unlock()
	a.log.Info("connected to control plane", "addr", addr, "version", first.Version)
	for {
		resp, err := stream.Recv()
		if err != nil {
			return got, err
		}
		got = true
		if err := stream.Send(a.handle(resp)); err != nil {
			return got, err
		}
	}
}

// handle applies one Response and returns its ACK or NACK.
func (a *Agent) handle(resp *pb.Response) *pb.Request {
	cur := a.Version()
	next, cfg, err := a.assemble(resp)
	if err == nil {
		err = a.opts.Apply(cfg)
		if err != nil && a.lastGood != nil {
			if rerr := a.opts.Apply(a.lastGood); rerr != nil {
				a.log.Error("re-applying the last good configuration", "error", rerr)
			}
		}
	}
	if err != nil {
		a.log.Error("configuration refused; the last good one keeps serving", "version", resp.GetVersion(), "error", err)
		return &pb.Request{Version: cur, ResponseNonce: resp.GetNonce(), ErrorDetail: &pb.Status{Message: err.Error()}}
	}
	a.held, a.lastGood = next, cfg
	a.mu.Lock()
	a.version = resp.GetVersion()
	a.mu.Unlock()
	a.log.Info("configuration applied", "version", resp.GetVersion(), "changed", len(resp.GetResources()),
		"removed", len(resp.GetRemoved()))
	return &pb.Request{Version: resp.GetVersion(), ResponseNonce: resp.GetNonce()}
}

// assemble applies resp's changes to a copy of the held resources and
// builds the configuration they make.
func (a *Agent) assemble(resp *pb.Response) (map[string]entry, *ir.Config, error) {
	next := make(map[string]entry, len(a.held)+len(resp.GetResources()))
	for n, e := range a.held {
		next[n] = e
	}
	for _, n := range resp.GetRemoved() {
		delete(next, n)
	}
	for _, r := range resp.GetResources() {
		e := entry{res: r}
		var err error
		switch {
		case strings.HasPrefix(r.GetName(), push.ListenerPrefix):
			e.listener, err = push.DecodeListener(r)
			if err == nil && a.opts.ListenAddress != "" {
				e.listener.Address = a.opts.ListenAddress
			}
		case strings.HasPrefix(r.GetName(), push.ClusterPrefix):
			e.cluster, err = push.DecodeCluster(r)
		default:
			err = fmt.Errorf("resource %q: unknown kind", r.GetName())
		}
		if err != nil {
			return nil, nil, err
		}
		// Resources are kept without their payload, only what is needed.
		e.res = &pb.Resource{Name: r.GetName(), Version: r.GetVersion()}
		next[r.GetName()] = e
	}
	cfg := &ir.Config{Version: resp.GetVersion()}
	names := make([]string, 0, len(next))
	for n := range next {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		e := next[n]
		if e.listener != nil {
			cfg.Listeners = append(cfg.Listeners, e.listener)
		} else {
			cfg.Clusters = append(cfg.Clusters, e.cluster)
		}
	}
	return next, cfg, nil
}
