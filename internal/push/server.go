package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	grpcstatus "google.golang.org/grpc/status"

	pb "causeway.dev/causeway/api/push/v1alpha1"
	"causeway.dev/causeway/internal/ir"
)

// Options configure a Server.
type Options struct {
	// Tokens authorise proxies that present no client certificate; nil
	// refuses them.
	Tokens *Tokens
	// TrustDomain is the SPIFFE trust domain of proxies' client
	// certificates (see CertGateways); "" means DefaultTrustDomain. A
	// proxy whose certificate the TLS layer verified (the gRPC server's
	// tls.Config has ClientCAs) is authorised by that certificate alone.
	TrustDomain string
	// Debounce is how long after a first Update the server waits,
	// coalescing further Updates, before streaming the latest; 0 means
	// 100ms, negative means none.
	Debounce time.Duration
	// MaxInFlight bounds the Responses awaiting their ACK across all
	// streams, so that a fleet connecting at once (a fresh start) is
	// synced in waves rather than buffering every proxy's configuration
	// at the same time; 0 means 128.
	MaxInFlight int
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Server streams configuration to proxies. Update and the gRPC handler
// may be called from any goroutine.
type Server struct {
	pb.UnimplementedPushServer
	opts Options
	log  *slog.Logger

	pending atomic.Pointer[update] // latest Update not yet built
	kick    chan struct{}
	changed chan struct{} // see Changes
	done    chan struct{}
	// inFlight holds a token per Response awaiting its ACK (MaxInFlight).
	inFlight chan struct{}
	stop     sync.Once

	mu     sync.Mutex
	snap   *snapshot
	groups map[string]*group
	conns  map[*conn]struct{}
	nonce  uint64
}

// group is the proxies that serve the same Gateways, sharing one view.
type group struct {
	gateways []string
	view     atomic.Pointer[view]
	conns    map[*conn]struct{} // guarded by Server.mu
}

// NewServer returns a Server; it streams nothing until the first Update.
func NewServer(opts Options) *Server {
	if opts.Debounce == 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 128
	}
	if opts.TrustDomain == "" {
		opts.TrustDomain = DefaultTrustDomain
	}
	s := &Server{opts: opts, log: opts.Logger, kick: make(chan struct{}, 1), done: make(chan struct{}),
		changed:  make(chan struct{}, 1),
		inFlight: make(chan struct{}, opts.MaxInFlight),
		groups:   map[string]*group{}, conns: map[*conn]struct{}{}}
	go s.loop()
	return s
}

// Keepalive timings shared by the agent (client) and ServerOptions: a
// server must allow the agent's pings or it would answer them with GOAWAY
// ("too_many_pings") and the whole fleet would reconnect.
const (
	KeepaliveTime    = 10 * time.Second // agent pings an idle connection this often
	KeepaliveTimeout = 5 * time.Second  // and drops it when no answer comes this soon
)

// ServerOptions are the gRPC server options a Push server needs: the
// codec that sends shared encodings (required), keepalive enforcement
// that admits the agents' pings, pings of its own to detect dead proxies,
// and small per-connection buffers, which thousands of connections need:
// proxies send only small ACKs, most connections are idle most of the
// time (an idle connection returns its write buffer to gRPC's shared pool
// by default).
// Add credentials.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(newCodec()),
		grpc.ReadBufferSize(4 << 10),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: KeepaliveTime / 2, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}
}

// Register adds the Push service to g.
func (s *Server) Register(g *grpc.Server) { pb.RegisterPushServer(g, s) }

// Close stops the update loop; streams end when their gRPC server stops.
func (s *Server) Close() { s.stop.Do(func() { close(s.done) }) }

// update is an IR and the owners of its certificates.
type update struct {
	cfg    *ir.Config
	owners Owners
}

// Update publishes a new IR; owners attributes its listeners'
// certificates to Gateways (SecretOwners), so that a proxy receives only
// the keys of the Gateways it serves; nil withholds every certificate of
// a socket shared with Gateways a proxy does not serve. Updates within
// the debounce window are coalesced: only the latest is cut into
// resources and streamed.
func (s *Server) Update(cfg *ir.Config, owners Owners) {
	s.pending.Store(&update{cfg, owners})
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Version is the IR version being streamed ("" before the first).
func (s *Server) Version() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap == nil {
		return ""
	}
	return s.snap.version
}

func (s *Server) loop() {
	for {
		select {
		case <-s.done:
			return
		case <-s.kick:
		}
		if s.opts.Debounce > 0 {
			// A fixed window from the first change, not reset by later
			// ones, so that constant churn cannot starve the proxies.
			t := time.NewTimer(s.opts.Debounce)
			select {
			case <-s.done:
				t.Stop()
				return
			case <-t.C:
			}
		}
		if u := s.pending.Swap(nil); u != nil {
			s.publish(u.cfg, u.owners)
		}
	}
}

// publish cuts cfg into resources, rebuilds every group's view, and wakes
// the streams whose view changed.
func (s *Server) publish(cfg *ir.Config, owners Owners) {
	s.mu.Lock()
	snap, err := newSnapshot(cfg, s.snap, owners)
	if err != nil {
		s.mu.Unlock()
		s.log.Error("configuration not streamed", "version", cfg.Version, "error", err)
		return
	}
	s.snap = snap
	var wake []*conn
	for _, g := range s.groups {
		old := g.view.Load()
		nv := snap.filter(g.gateways, old)
		if nv == old {
			continue
		}
		g.view.Store(nv)
		for c := range g.conns {
			wake = append(wake, c)
		}
	}
	s.mu.Unlock()
	s.notify()
	for _, c := range wake {
		c.wake()
	}
	s.log.Info("configuration published", "version", cfg.Version, "proxies_woken", len(wake))
}

// join registers a stream in the group of its Gateways.
func (s *Server) join(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := groupKey(c.node.GetGateways())
	g := s.groups[k]
	if g == nil {
		g = &group{gateways: c.node.GetGateways(), conns: map[*conn]struct{}{}}
		if s.snap != nil {
			g.view.Store(s.snap.filter(g.gateways, nil))
		}
		s.groups[k] = g
	}
	g.conns[c] = struct{}{}
	c.group = g
	s.conns[c] = struct{}{}
	s.notify()
}

func (s *Server) leave(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	g := c.group
	delete(g.conns, c)
	if len(g.conns) == 0 {
		delete(s.groups, groupKey(g.gateways))
	}
	s.notify()
}

// notify signals Changes, without blocking.
func (s *Server) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Changes receives (coalesced) after the fleet's state changed: a proxy
// connected, left, acknowledged or refused a configuration, or a new one
// was published. One consumer; see Reporter.
func (s *Server) Changes() <-chan struct{} { return s.changed }

func (s *Server) nextNonce() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nonce++
	return strconv.FormatUint(s.nonce, 36)
}

// Stream serves one proxy (the gRPC handler).
func (s *Server) Stream(stream pb.Push_StreamServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	node := first.GetNode()
	if node.GetId() == "" {
		return grpcstatus.Error(codes.InvalidArgument, "first request must carry a node with an id")
	}
	ident, err := s.authorize(stream.Context(), node)
	if err != nil {
		s.log.Warn("proxy refused", "node", node.GetId(), "error", err)
		return grpcstatus.Error(codes.PermissionDenied, err.Error())
	}
	c := &conn{node: node, identity: ident, kick: make(chan struct{}, 1), since: time.Now()}
	if p, ok := peer.FromContext(stream.Context()); ok {
		c.peer = p.Addr.String()
	}
	// Resumption: trust the versions the proxy says it runs, so that an
	// unchanged configuration sends nothing.
	c.ackedVersion = first.GetVersion()
	c.acked = make(map[string]*pb.Resource, len(first.GetResourceVersions()))
	for n, v := range first.GetResourceVersions() {
		c.acked[n] = &pb.Resource{Name: n, Version: v}
	}
	node.Token = "" // never kept, never shown
	s.join(c)
	defer s.leave(c)
	s.log.Info("proxy connected", "node", node.GetId(), "gateways", node.GetGateways(), "peer", c.peer,
		"version", c.ackedVersion)

	reqs := make(chan *pb.Request)
	recvErr := make(chan error, 1)
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case reqs <- r:
			case <-stream.Context().Done():
				return
			}
		}
	}()
	holding := false // a token of inFlight
	release := func() {
		if holding {
			<-s.inFlight
			holding = false
		}
	}
	defer release()
	c.wake()
	for {
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case err := <-recvErr:
			if !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) {
				s.log.Info("proxy disconnected", "node", node.GetId(), "error", err)
			}
			return nil
		case r := <-reqs:
			if c.handle(s.log, r) {
				release()
				s.notify()
			}
			c.wake()
		case <-c.kick:
			if !c.wants() {
				continue
			}
			select {
			case s.inFlight <- struct{}{}:
				holding = true
			case <-stream.Context().Done():
				return stream.Context().Err()
			}
			w, err := c.next(s.nextNonce)
			if err != nil {
				return grpcstatus.Errorf(codes.Internal, "%v", err)
			}
			if w == nil {
				release()
				continue
			}
			if err := stream.SendMsg(w); err != nil {
				return fmt.Errorf("send to %s: %w", node.GetId(), err)
			}
		}
	}
}
