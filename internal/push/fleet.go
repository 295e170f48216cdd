package push

import (
	"context"
	"fmt"
	"sync"
	"time"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/status"
)

// ReasonNoProxies is the reason of Programmed=False on a Gateway that no
// connected proxy serves: the control plane accepted it, nothing runs it.
const ReasonNoProxies = "NoProxies"

// GatewayFleet is what the connected proxies serving one Gateway run. Its
// JSON form is what a replica publishes for the others (see Merge).
type GatewayFleet struct {
	// Version of the Gateway's part of the configuration that Acked and
	// Nacked refer to (see Server.GatewayVersions); "" when unknown.
	Version string `json:"v,omitempty"`
	// Proxies serving the Gateway, connected now.
	Proxies int `json:"p"`
	// Acked of them run the current configuration of their Gateways;
	// Nacked refused it and run an older one; the rest have it in flight.
	Acked  int `json:"a,omitempty"`
	Nacked int `json:"n,omitempty"`
	// Nack is the message of one refusal of the current configuration:
	// the least in byte order, so that it does not change with the order
	// in which proxies are visited.
	Nack string `json:"m,omitempty"`
}

// Fleet returns, by Gateway ("namespace/name"), what its connected proxies
// run. A Gateway no proxy serves is absent.
func (s *Server) Fleet() map[string]GatewayFleet {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	var versions map[string]string
	if s.snap != nil {
		versions = s.snap.gateways
	}
	s.mu.Unlock()
	out := map[string]GatewayFleet{}
	for _, c := range conns {
		var want string
		if v := c.group.view.Load(); v != nil {
			want = v.version
		}
		c.mu.Lock()
		acked := want != "" && c.ackedVersion == want
		var nack string
		nacked := want != "" && c.nacked == want && c.lastNack != nil
		if nacked {
			nack = c.lastNack.Message
		}
		c.mu.Unlock()
		for _, g := range c.node.GetGateways() {
			f := out[g]
			f.Version = versions[g]
			f.Proxies++
			switch {
			case acked:
				f.Acked++
			case nacked:
				f.Nacked++
				f.Nack = leastNack(f.Nack, nack)
			}
			out[g] = f
		}
	}
	return out
}

// Programmed is the Programmed condition of a Gateway that translation
// accepted, given its fleet: True when a proxy runs its current
// configuration; False with reason Invalid and a proxy's refusal when
// every connected proxy refused it; False with ReasonNoProxies when none
// is connected, or Pending while the configuration is in flight.
func Programmed(f GatewayFleet) status.Condition {
	c := status.Condition{Type: status.Programmed}
	switch {
	case f.Acked > 0:
		c.Status, c.Reason = true, status.ReasonProgrammed
		c.Message = fmt.Sprintf("%d of %d connected proxies run the current configuration", f.Acked, f.Proxies)
	case f.Proxies == 0:
		c.Reason, c.Message = ReasonNoProxies, "no proxy serving this Gateway is connected to the control plane"
	case f.Nacked == f.Proxies:
		c.Reason = status.ReasonInvalid
		c.Message = fmt.Sprintf("every connected proxy (%d) refused the current configuration and runs an older one: %s",
			f.Proxies, f.Nack)
	default:
		c.Reason = status.ReasonPending
		c.Message = fmt.Sprintf("waiting for %d of %d connected proxies to acknowledge the current configuration",
			f.Proxies-f.Nacked, f.Proxies)
	}
	return c
}

// MarkProgrammed returns rep with the Programmed condition of each
// Gateway that translation found programmable (Programmed=True) replaced
// by its fleet's (see Programmed). rep is not modified; the result shares
// its other entries.
func (s *Server) MarkProgrammed(rep *status.Report) *status.Report {
	return Mark(rep, s.Fleet())
}

// Mark is MarkProgrammed with a given fleet by Gateway ("namespace/name"),
// such as Merge's view across control-plane replicas.
func Mark(rep *status.Report, fleet map[string]GatewayFleet) *status.Report {
	if rep == nil {
		return nil
	}
	out := &status.Report{Resources: make([]*status.Resource, len(rep.Resources))}
	for i, e := range rep.Resources {
		out.Resources[i] = e
		if e.Ref.Kind != "Gateway" {
			continue
		}
		for j, c := range e.Conditions {
			if c.Type != status.Programmed || !c.Status {
				continue
			}
			cp := *e
			cp.Conditions = append([]status.Condition(nil), e.Conditions...)
			nc := Programmed(fleet[e.Ref.Namespace+"/"+e.Ref.Name])
			if nc.Status {
				// Keep translation's message (what is served where).
				nc.Message = c.Message + "; " + nc.Message
			}
			cp.Conditions[j] = nc
			out.Resources[i] = &cp
			break
		}
	}
	return out
}

// StatusSink receives reports to write where users read them; the
// Kubernetes status writer (kube.StatusWriter) is one, and it has the
// same method as gateway.StatusSink. addrs gives a Gateway's addresses
// (nil: its spec.addresses).
type StatusSink interface {
	Update(snap *resource.Snapshot, rep *status.Report, addrs func(*gwv1.Gateway) []string)
}

// FleetView is the fleet a Reporter marks reports with: a Server (its
// own proxies) or a view across control-plane replicas (push/lease).
// Changes receives after Fleet may have changed; it has one consumer.
type FleetView interface {
	Fleet() map[string]GatewayFleet
	Changes() <-chan struct{}
}

// Reporter joins each translation's report with the fleet's state
// (Mark) and hands it to a sink, again whenever the fleet changes. Its
// methods are safe for concurrent use; it is the only consumer of its
// FleetView's Changes.
type Reporter struct {
	srv  FleetView
	sink StatusSink
	// settle coalesces fleet changes (a fleet connecting at once) into
	// one write.
	settle time.Duration

	mu   sync.Mutex
	snap *resource.Snapshot
	rep  *status.Report
}

// NewReporter returns a Reporter of srv's fleet (a *Server or another
// FleetView); sink may be nil (the reports are then only read through
// Status).
func NewReporter(srv FleetView, sink StatusSink) *Reporter {
	return &Reporter{srv: srv, sink: sink, settle: 200 * time.Millisecond}
}

// Update records the report of a new translation and hands it, marked, to
// the sink.
func (r *Reporter) Update(snap *resource.Snapshot, rep *status.Report) {
	r.mu.Lock()
	r.snap, r.rep = snap, rep
	r.mu.Unlock()
	r.flush()
}

// Status is the last report, marked with the fleet's state now (for the
// admin API's /status).
func (r *Reporter) Status() *status.Report {
	r.mu.Lock()
	rep := r.rep
	r.mu.Unlock()
	return Mark(rep, r.srv.Fleet())
}

func (r *Reporter) flush() {
	if r.sink == nil {
		return
	}
	r.mu.Lock()
	snap, rep := r.snap, r.rep
	r.mu.Unlock()
	if rep != nil {
		r.sink.Update(snap, Mark(rep, r.srv.Fleet()), nil)
	}
}

// Run re-sends the report to the sink after fleet changes, until ctx
// ends.
func (r *Reporter) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.srv.Changes():
		}
		t := time.NewTimer(r.settle)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		r.flush()
	}
}
