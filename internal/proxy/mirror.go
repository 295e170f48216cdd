package proxy

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"causeway.dev/causeway/internal/upstream"
)

const (
	// maxMirrors bounds the mirror requests in flight; more are dropped.
	maxMirrors = 64
	// maxMirrorBody is the largest request body copied to mirrors; a
	// request with a larger body is not mirrored.
	maxMirrorBody = 64 << 10
	// mirrorTimeout bounds one mirror request.
	mirrorTimeout = 30 * time.Second
)

// mirrorSet is the mirror copies of one request, waiting for its body.
// body runs on whichever goroutine reads the request body; end on the
// handler's. state settles who sends or drops the copies.
type mirrorSet struct {
	p     *Proxy
	reqs  []mirrorReq
	cl    int64 // request Content-Length, -1 unknown
	buf   []byte
	state atomic.Int32 // 0 pending, 1 sent or dropped
}

// mirrorReq is one prepared copy: the outbound request's method, URL, Host
// and a clone of its headers.
type mirrorReq struct {
	c      *upstream.Cluster
	method string
	url    url.URL
	host   string
	header http.Header
}

// prepareMirrors samples the route's mirrors for r (the outbound request,
// its filters applied). Without a body the copies leave at once and nil is
// returned; otherwise they wait for the body, copied by body through the
// tee of b, and the returned set must be ended with end.
func (p *Proxy) prepareMirrors(e *routeEntry, r *http.Request, b *bodyReader) *mirrorSet {
	var s *mirrorSet
	for i := range e.mirrors {
		m := &e.mirrors[i]
		if m.c == nil || m.num < m.den && rand.Uint32N(m.den) >= m.num {
			continue
		}
		if s == nil {
			s = &mirrorSet{p: p, cl: r.ContentLength}
		}
		s.reqs = append(s.reqs, mirrorReq{c: m.c, method: r.Method, url: *r.URL, host: r.Host, header: r.Header.Clone()})
	}
	switch {
	case s == nil:
		return nil
	case b == nil:
		s.launch()
		return nil
	case r.ContentLength > maxMirrorBody:
		p.mirrorDropped.Add(int64(len(s.reqs)))
		return nil
	}
	b.tee = s
	return s
}

// body receives the request body as it streams upstream.
func (s *mirrorSet) body(p []byte, eof bool) {
	if s.state.Load() != 0 {
		return
	}
	if len(s.buf)+len(p) > maxMirrorBody {
		s.drop()
		return
	}
	s.buf = append(s.buf, p...)
	if eof || s.cl >= 0 && int64(len(s.buf)) == s.cl {
		if s.state.CompareAndSwap(0, 1) {
			s.launch()
		}
	}
}

// end drops the copies if the body never completed.
func (s *mirrorSet) end() { s.drop() }

func (s *mirrorSet) drop() {
	if s.state.CompareAndSwap(0, 1) {
		s.p.mirrorDropped.Add(int64(len(s.reqs)))
	}
}

func (s *mirrorSet) launch() {
	for i := range s.reqs {
		s.p.sendMirror(&s.reqs[i], s.buf)
	}
}

// sendMirror sends one copy in its own goroutine if a slot is free. The
// answer is read and discarded.
func (p *Proxy) sendMirror(m *mirrorReq, body []byte) {
	select {
	case p.mirrorSlots <- struct{}{}:
	default:
		p.mirrorDropped.Add(1)
		return
	}
	p.active.Add(1)
	go func() {
		defer p.active.Add(-1)
		defer func() { <-p.mirrorSlots }()
		ctx, cancel := context.WithTimeout(p.bg, mirrorTimeout)
		defer cancel()
		u := m.url
		req := (&http.Request{
			Method:        m.method,
			URL:           &u,
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        m.header,
			Host:          m.host,
			ContentLength: int64(len(body)),
			Body:          http.NoBody,
		}).WithContext(ctx)
		if len(body) > 0 {
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		resp, err := m.c.RoundTrip(req)
		if err != nil {
			p.opts.Logger.Debug("mirror", "cluster", m.c.Name(), "err", err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}()
}
