package push

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// ProxyStatus is one connected proxy, as the status table shows it.
type ProxyStatus struct {
	ID       string   `json:"id"`
	Role     string   `json:"role"`
	Gateways []string `json:"gateways"`
	Zone     string   `json:"zone,omitempty"`
	Region   string   `json:"region,omitempty"`
	Build    string   `json:"build,omitempty"`
	Peer     string   `json:"peer"`
	// Identity is how the proxy was authorised: "token", or "certificate"
	// and the Gateways its client certificate names.
	Identity    string    `json:"identity,omitempty"`
	ConnectedAt time.Time `json:"connectedAt"`
	// AckedVersion is the version of the resource set the proxy runs;
	// DesiredVersion the one it should run: equal when in sync.
	AckedVersion   string    `json:"ackedVersion"`
	AckedAt        time.Time `json:"ackedAt,omitzero"`
	DesiredVersion string    `json:"desiredVersion"`
	// Pending is true while a Response awaits the proxy's ACK or NACK.
	Pending  bool  `json:"pending,omitempty"`
	LastNack *Nack `json:"lastNack,omitempty"`
	// Control is the control-plane replica the proxy is connected to, as
	// a merged table (MergeStatus) names it; "" in one replica's table.
	Control string `json:"control,omitempty"`
}

// StatusReport is the control plane's view of its fleet.
type StatusReport struct {
	// Version of the IR being streamed.
	Version string        `json:"version"`
	Proxies []ProxyStatus `json:"proxies"`
}

// Status returns every connected proxy, sorted by id.
func (s *Server) Status() StatusReport {
	s.mu.Lock()
	rep := StatusReport{Proxies: make([]ProxyStatus, 0, len(s.conns))}
	if s.snap != nil {
		rep.Version = s.snap.version
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		ps := ProxyStatus{ID: c.node.GetId(), Role: c.node.GetRole(), Gateways: c.node.GetGateways(),
			Zone: c.node.GetLocality().GetZone(), Region: c.node.GetLocality().GetRegion(),
			Build: c.node.GetBuild(), Peer: c.peer, Identity: c.identity, ConnectedAt: c.since}
		if v := c.group.view.Load(); v != nil {
			ps.DesiredVersion = v.version
		}
		c.mu.Lock()
		ps.AckedVersion, ps.AckedAt, ps.Pending = c.ackedVersion, c.ackedAt, c.pending != nil
		if c.lastNack != nil {
			n := *c.lastNack
			ps.LastNack = &n
		}
		c.mu.Unlock()
		rep.Proxies = append(rep.Proxies, ps)
	}
	slices.SortFunc(rep.Proxies, func(a, b ProxyStatus) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return strings.Compare(a.Peer, b.Peer)
	})
	return rep
}

// Handler serves the fleet table, GET /proxies: the StatusReport as JSON
// (what `causeway ctl proxy-status` shows). Mount it beside the admin API
// (internal/admin), on a localhost address.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.Status())
	})
}
