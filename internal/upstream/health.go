package upstream

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"causeway.dev/causeway/internal/ir"
)

// Active health checking: one goroutine per endpoint of a cluster with a
// health check, probing every Interval (plus up to Jitter) with a Timeout.
// An endpoint starts healthy (so a reload never begins with an outage) and
// is probed at once; UnhealthyThreshold consecutive failures (default 3)
// take it out, HealthyThreshold consecutive successes (default 2) bring it
// back (with slow start, if configured). The checkers of a cluster live
// while its health check and endpoint set stay the same across reloads.
//
// Probes: HTTP GETs Path on the endpoint's own connection pool (HTTP/1.1
// or h2c as the cluster speaks) and expects one of ExpectedStatuses
// (default 200-399). TCP connects and closes. gRPC calls
// grpc.health.v1.Health/Check over h2c (the cluster's connection for h2c
// clusters, a connection of the checker's own otherwise) and expects
// grpc-status 0 with status SERVING.

type checkKind uint8

const (
	checkHTTP checkKind = iota
	checkTCP
	checkGRPC
)

// healthConfig is an ir.HealthCheck with defaults applied. It is compared
// with == to decide whether checkers survive a reload.
type healthConfig struct {
	kind                checkKind
	path, host          string
	statuses            string // expected statuses, as a set of bytes indexed by status-100; "" for 200-399
	service             string
	interval, jitter    time.Duration
	timeout             time.Duration
	healthyN, unhealthy int
}

func newHealthConfig(hc *ir.HealthCheck) *healthConfig {
	if hc == nil || hc.HTTP == nil && !hc.TCP && hc.GRPC == nil {
		return nil
	}
	c := &healthConfig{
		interval:  cmp0(time.Duration(hc.Interval), 5*time.Second),
		jitter:    max(time.Duration(hc.Jitter), 0),
		timeout:   cmp0(time.Duration(hc.Timeout), time.Second),
		healthyN:  hc.HealthyThreshold,
		unhealthy: hc.UnhealthyThreshold,
	}
	if c.healthyN <= 0 {
		c.healthyN = 2
	}
	if c.unhealthy <= 0 {
		c.unhealthy = 3
	}
	switch {
	case hc.HTTP != nil:
		c.kind = checkHTTP
		c.path, c.host = hc.HTTP.Path, hc.HTTP.Host
		if c.path == "" || c.path[0] != '/' {
			c.path = "/" + c.path
		}
		if len(hc.HTTP.ExpectedStatuses) > 0 {
			set := make([]byte, 500)
			for _, s := range hc.HTTP.ExpectedStatuses {
				if s >= 100 && s < 600 {
					set[s-100] = 1
				}
			}
			c.statuses = string(set)
		}
	case hc.TCP:
		c.kind = checkTCP
	default:
		c.kind = checkGRPC
		c.service = hc.GRPC.Service
	}
	return c
}

func cmp0(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (h *healthConfig) expected(status int) bool {
	if h.statuses == "" {
		return status >= 200 && status < 400
	}
	return status >= 100 && status < 600 && h.statuses[status-100] == 1
}

// healthRun is the checkers of one endpoint set under one health config.
type healthRun struct {
	cfg     healthConfig
	members []*member
	ctx     context.Context
	cancel  context.CancelFunc
}

// reconcileHealthLocked keeps, restarts or stops the checkers after a
// change of configuration or endpoints. c.mu and m.mu held.
func (c *Cluster) reconcileHealthLocked() {
	if r := c.hcRun; r != nil && c.hc != nil && r.cfg == *c.hc && slices.Equal(r.members, c.members) {
		return
	}
	c.stopHealthLocked()
	if c.hc == nil {
		for _, mb := range c.members {
			mb.hcOK = true
		}
		return
	}
	if c.stopped {
		return
	}
	r := &healthRun{cfg: *c.hc, members: c.members}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	c.hcRun = r
	for _, mb := range c.members {
		c.m.wg.Add(1)
		go c.checkLoop(r, mb, mb.hcOK)
	}
}

func (c *Cluster) stopHealthLocked() {
	if c.hcRun != nil {
		c.hcRun.cancel()
		c.hcRun = nil
	}
}

func (c *Cluster) checkLoop(r *healthRun, mb *member, healthy bool) {
	defer c.m.wg.Done()
	cfg := &r.cfg
	var own *h2Transport // gRPC to an HTTP/1.1 cluster's endpoint
	if cfg.kind == checkGRPC && mb.ep.h2 == nil {
		own = newH2CTransport(mb.ep, 2*cfg.interval+cfg.jitter)
		defer own.CloseIdleConnections()
	}
	t := time.NewTimer(jitter(cfg.jitter))
	defer t.Stop()
	var ok, fail int
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(r.ctx, cfg.timeout)
		err := probe(ctx, cfg, mb.ep, own)
		cancel()
		if r.ctx.Err() != nil {
			return
		}
		if err == nil {
			ok, fail = ok+1, 0
		} else {
			ok, fail = 0, fail+1
		}
		switch {
		case healthy && fail >= cfg.unhealthy:
			healthy = false
			c.m.opts.Logger.Debug("upstream health check failed", "cluster", c.name, "endpoint", mb.ep.addr, "err", err)
			c.setHealth(r, mb, false)
		case !healthy && ok >= cfg.healthyN:
			healthy = true
			c.setHealth(r, mb, true)
		}
		t.Reset(cfg.interval + jitter(cfg.jitter))
	}
}

func jitter(j time.Duration) time.Duration {
	if j <= 0 {
		return 0
	}
	return rand.N(j)
}

// setHealth records a verdict of run r, unless r has been replaced.
func (c *Cluster) setHealth(r *healthRun, mb *member, healthy bool) {
	c.mu.Lock()
	if r.ctx.Err() != nil || c.stopped || mb.hcOK == healthy || !c.has(mb) {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	mb.hcOK = healthy
	if healthy {
		mb.rampFrom = now
		mb.toHealthy++
	} else {
		mb.toUnhealthy++
	}
	c.rebuildLocked(now)
	c.armLocked(now)
	c.mu.Unlock()
	ev := EventUnhealthy
	if healthy {
		ev = EventHealthy
	}
	c.event(mb, ev)
}

// probe runs one check; nil means healthy.
func probe(ctx context.Context, cfg *healthConfig, e *endpoint, own *h2Transport) error {
	switch cfg.kind {
	case checkTCP:
		nc, err := e.dial(ctx)
		if err != nil {
			return err
		}
		return nc.Close()
	case checkGRPC:
		rt := own
		if rt == nil {
			rt = e.h2
		}
		return probeGRPC(ctx, cfg, e, rt)
	}
	host := cfg.host
	if host == "" {
		host = e.host
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.host+cfg.path, nil)
	if err != nil {
		return err
	}
	req.Host = host
	req.Header.Set("User-Agent", "causeway-health-check")
	resp, _, err := e.roundTrip(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if !cfg.expected(resp.StatusCode) {
		return fmt.Errorf("health check: status %d", resp.StatusCode)
	}
	return nil
}

// gRPC health protocol, by hand: a HealthCheckRequest is field 1 (service,
// string); a HealthCheckResponse is field 1 (status, enum), SERVING = 1.
// Messages travel in the gRPC framing: a compressed flag byte and a
// big-endian uint32 length.
const grpcServing = 1

func grpcHealthRequest(service string) []byte {
	msg := []byte{}
	if service != "" {
		msg = append(msg, 0x0a)
		msg = binary.AppendUvarint(msg, uint64(len(service)))
		msg = append(msg, service...)
	}
	b := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// grpcHealthStatus decodes a framed HealthCheckResponse.
func grpcHealthStatus(b []byte) (uint64, error) {
	if len(b) < 5 || b[0] != 0 {
		return 0, fmt.Errorf("health check: bad grpc frame")
	}
	n := binary.BigEndian.Uint32(b[1:5])
	if uint64(len(b)-5) < uint64(n) {
		return 0, fmt.Errorf("health check: short grpc message")
	}
	msg := b[5 : 5+n]
	var status uint64
	for len(msg) > 0 {
		tag, k := binary.Uvarint(msg)
		if k <= 0 {
			return 0, fmt.Errorf("health check: bad protobuf tag")
		}
		msg = msg[k:]
		var v uint64
		switch tag & 7 {
		case 0:
			v, k = binary.Uvarint(msg)
		case 1:
			k = 8
		case 2:
			v, k = binary.Uvarint(msg)
			if k > 0 {
				k += int(v)
			}
		case 5:
			k = 4
		default:
			return 0, fmt.Errorf("health check: bad protobuf wire type %d", tag&7)
		}
		if k <= 0 || k > len(msg) {
			return 0, fmt.Errorf("health check: truncated protobuf")
		}
		if tag == 0x08 { // field 1, varint
			status = v
		}
		msg = msg[k:]
	}
	return status, nil
}

func probeGRPC(ctx context.Context, cfg *healthConfig, e *endpoint, rt http.RoundTripper) error {
	host := cfg.host
	if host == "" {
		host = e.host
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+e.host+"/grpc.health.v1.Health/Check",
		bytes.NewReader(grpcHealthRequest(cfg.service)))
	if err != nil {
		return err
	}
	req.Host = host
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health check: status %d", resp.StatusCode)
	}
	gs := resp.Trailer.Get("Grpc-Status")
	if gs == "" {
		gs = resp.Header.Get("Grpc-Status") // trailers-only response
	}
	if gs != "0" {
		return fmt.Errorf("health check: grpc-status %q", gs)
	}
	st, err := grpcHealthStatus(b)
	if err != nil {
		return err
	}
	if st != grpcServing {
		return fmt.Errorf("health check: serving status %d", st)
	}
	return nil
}
