package upstream

import (
	"context"
	"net"
	"slices"
	"strconv"
	"time"
)

// hostKey is a hostname endpoint of some cluster.
type hostKey struct {
	name string
	port int
}

// host is the DNS state of one hostname: the last good answer, as
// "IP:port" strings, and the lifetime of its resolver goroutine.
type host struct {
	addrs  []string
	ctx    context.Context
	cancel context.CancelFunc
}

// firstResolveTimeout bounds the synchronous lookup in Update, so a slow
// DNS server cannot stall a reload for long; the background loop retries.
const firstResolveTimeout = 2 * time.Second

// startHost resolves hk once and starts its re-resolution. m.mu must be held.
func (m *Manager) startHost(hk hostKey) {
	h := &host{}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	ctx, cancel := context.WithTimeout(h.ctx, min(firstResolveTimeout, m.opts.ResolveInterval))
	h.addrs, _ = m.lookup(ctx, hk)
	cancel()
	m.hosts[hk] = h
	m.wg.Add(1)
	go m.resolveLoop(hk, h)
}

// lookup returns the sorted "IP:port" addresses of hk.
func (m *Manager) lookup(ctx context.Context, hk hostKey) ([]string, error) {
	ips, err := m.opts.Resolver.LookupNetIP(ctx, "ip", hk.name)
	if err != nil {
		return nil, err
	}
	port := strconv.Itoa(hk.port)
	addrs := make([]string, 0, len(ips))
	for _, ip := range ips {
		addrs = append(addrs, net.JoinHostPort(ip.Unmap().String(), port))
	}
	slices.Sort(addrs)
	return slices.Compact(addrs), nil
}

// resolveLoop re-resolves hk every ResolveInterval and rebuilds the
// clusters using it when the answer changes. Failed or empty answers keep
// the last good addresses.
func (m *Manager) resolveLoop(hk hostKey, h *host) {
	defer m.wg.Done()
	t := time.NewTicker(m.opts.ResolveInterval)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(h.ctx, m.opts.ResolveInterval)
		addrs, err := m.lookup(ctx, hk)
		cancel()
		if err != nil || len(addrs) == 0 {
			continue
		}
		m.mu.Lock()
		if h.ctx.Err() != nil {
			m.mu.Unlock()
			return
		}
		if !slices.Equal(addrs, h.addrs) {
			h.addrs = addrs
			m.rebuildHost(hk)
		}
		m.mu.Unlock()
	}
}

// rebuildHost rebuilds the clusters that name hk. m.mu must be held.
func (m *Manager) rebuildHost(hk hostKey) {
	p := m.clusters.Load()
	if p == nil {
		return
	}
	for _, c := range *p {
		for _, s := range c.spec {
			if s.Hostname == hk.name && s.Port == hk.port {
				m.build(c)
				break
			}
		}
	}
	m.sweep()
}
