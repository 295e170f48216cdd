package proxy

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"causeway.dev/causeway/internal/route"
	"causeway.dev/causeway/internal/telemetry"
	"causeway.dev/causeway/internal/upstream"
)

// exchange is the state of one request, kept on the handler's stack.
type exchange struct {
	start     time.Time
	upStart   time.Time // set only when an access log wants the upstream time
	upDur     time.Duration
	status    int
	flags     string
	bytesIn   int64
	bytesOut  int64
	method    string
	authority string
	path      string
	proto     string
	reqID     string
	endpoint  string // address of the endpoint that answered, for the access log
	entry     *routeEntry
	be        *backendEntry
	g         *graph
	grpc      bool // local replies are gRPC statuses (grpc.go)
	retries   int  // retries made (retry.go)
	urx       bool // the last attempt failed with no retry left: flag URX
	tryCancel context.CancelCauseFunc
	origin    string // Origin of a request to a route with CORS (cors.go)
}

// errUpstreamTimeout is the cancel cause of a route timeout.
var errUpstreamTimeout error = timeoutError("upstream request timeout")

// timeoutError is the cause the proxy's timers cancel requests with; its
// Timeout method tells the upstream to count it against the endpoint
// (outlier detection), unlike a client cancelling.
type timeoutError string

func (e timeoutError) Error() string { return string(e) }
func (e timeoutError) Timeout() bool { return true }

// ServeHTTP is the request path of one listener.
func (ls *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := ls.p
	x := exchange{
		start:     time.Now(),
		g:         ls.graph.Load(),
		method:    r.Method,
		authority: r.Host,
		path:      r.URL.Path,
		proto:     r.Proto,
	}
	ls.advertiseH3(w, r)
	ls.serve(w, r, &x)
	p.finish(&x)
}

func (ls *listener) serve(w http.ResponseWriter, r *http.Request, x *exchange) {
	p := ls.p
	g := x.g
	if g.sni != nil && g.sni.misdirected(r) {
		x.misdirectedReply(w)
		return
	}
	x.grpc = isGRPC(r)
	raw := r.URL.EscapedPath()
	path, ok := route.NormalizePath(raw)
	if !ok {
		x.localReply(w, http.StatusBadRequest, "", "bad request path\n")
		return
	}
	mr := route.Request{Host: r.Host, Path: path, Method: r.Method, RawQuery: r.URL.RawQuery, Header: r.Header}
	e, ok := g.table.Match(&mr)
	if !ok {
		x.localReply(w, http.StatusNotFound, "NR", "no matching route\n")
		return
	}
	x.entry = e
	x.grpc = x.grpc || e.grpc
	if x.corsPreflight(w, r, e) {
		return
	}
	if e.redirect != nil {
		code, loc := e.redirect.Response(r, g.scheme, g.port)
		x.corsHeaders(w.Header())
		w.Header()["Location"] = []string{loc}
		w.WriteHeader(code)
		x.status = code
		return
	}
	be := e.pick()
	if be == nil || be.c == nil {
		x.be = be
		x.localReply(w, http.StatusInternalServerError, "", "invalid backend\n")
		return
	}
	x.be = be
	if r.ContentLength > p.opts.MaxBodyBytes {
		x.localReply(w, http.StatusRequestEntityTooLarge, "", "request body too large\n")
		return
	}
	if e.fault != nil && x.inject(w, r, e.fault) {
		return
	}

	// The inbound request becomes the outbound one: its URL and Header are
	// ours to change (net/http snapshots what it needs before calling the
	// handler). Its Body stays as net/http gave it, because the server
	// inspects that value after the handler; a request with a body or a
	// timeout goes out as a shallow copy.
	if path != raw {
		setPath(r.URL, path)
	}
	upgrade := isUpgrade(r)
	removeHopHeaders(r.Header, upgrade)
	delete(r.Header, "Expect") // net/http answered 100-continue already
	x.reqID = p.forwardHeaders(r, g)
	e.reqHeaders.Apply(r.Header)
	be.reqHeaders.Apply(r.Header)
	e.rewrite.Apply(r)

	dropEmptyH2Body(r)
	out := r
	var body *bodyReader
	if r.Body != nil && r.Body != http.NoBody {
		body = &bodyReader{r: r.Body, left: p.opts.MaxBodyBytes}
	}
	var mirrors *mirrorSet
	if len(e.mirrors) > 0 {
		mirrors = p.prepareMirrors(e, r, body)
	}
	var ctx context.Context
	var cancel context.CancelCauseFunc
	var timer *time.Timer
	timeout := e.timeout
	if x.grpc {
		timeout = grpcTimeout(r.Header, timeout)
	}
	if timeout > 0 {
		ctx, cancel = context.WithCancelCause(r.Context())
		timer = time.AfterFunc(timeout, func() { cancel(errUpstreamTimeout) })
		out = r.WithContext(ctx)
	} else if body != nil {
		out = r.WithContext(r.Context())
	}
	if body != nil {
		out.Body = body
	}
	out.Close = false
	out.RequestURI = ""

	if p.opts.AccessLog != nil {
		x.upStart = time.Now()
	}
	var resp *http.Response
	var err error
	if e.retry != nil {
		resp, err = ls.roundTripRetry(x, e.retry, be, out, body)
	} else {
		resp, err = be.c.RoundTrip(out)
	}
	if timer != nil {
		timer.Stop()
	}
	if !x.upStart.IsZero() {
		x.upDur = time.Since(x.upStart)
	}
	if body != nil {
		x.bytesIn = body.n.Load()
	}
	if err != nil {
		ls.upstreamError(w, r, x, err, ctx, body)
		x.retryFlag()
		if cancel != nil {
			cancel(nil)
		}
		if mirrors != nil {
			mirrors.end()
		}
		return
	}
	x.retryFlag()
	if resp.StatusCode == http.StatusSwitchingProtocols && upgrade {
		ls.serveUpgrade(w, resp, x)
	} else {
		ls.copyResponse(w, resp, x)
	}
	x.endTry()
	if cancel != nil {
		cancel(nil)
	}
	if body != nil {
		x.bytesIn = body.n.Load()
	}
	if mirrors != nil {
		mirrors.end()
	}
}

// pick chooses a backend by weight; nil when every weight is 0.
func (e *routeEntry) pick() *backendEntry {
	if e.total <= 0 {
		return nil
	}
	if len(e.backends) == 1 {
		return &e.backends[0]
	}
	n := rand.Int32N(e.total)
	for i, c := range e.cum {
		if n < c {
			return &e.backends[i]
		}
	}
	return nil
}

// setPath installs a normalised escaped path.
func setPath(u *url.URL, escaped string) {
	if strings.IndexByte(escaped, '%') < 0 {
		u.Path, u.RawPath = escaped, ""
		return
	}
	if p, err := url.PathUnescape(escaped); err == nil {
		u.Path, u.RawPath = p, escaped
	}
}

// upstreamError answers a failed round trip.
func (ls *listener) upstreamError(w http.ResponseWriter, r *http.Request, x *exchange, err error, ctx context.Context, body *bodyReader) {
	switch {
	case body != nil && body.tooLarge.Load():
		x.localReply(w, http.StatusRequestEntityTooLarge, "", "request body too large\n")
	case ctx != nil && context.Cause(ctx) == errUpstreamTimeout:
		x.localReply(w, http.StatusGatewayTimeout, "UT", "upstream request timeout\n")
	case r.Context().Err() != nil:
		x.status, x.flags = 499, "DC"
	case errors.Is(err, upstream.ErrNoEndpoint):
		x.localReply(w, http.StatusServiceUnavailable, "UH", "no healthy upstream\n")
	case errors.Is(err, upstream.ErrConnect):
		x.localReply(w, http.StatusServiceUnavailable, "UF", "upstream connect error\n")
	case errors.Is(err, upstream.ErrOverflow):
		x.localReply(w, http.StatusServiceUnavailable, "UO", "upstream overflow\n")
	case errors.Is(err, context.DeadlineExceeded):
		x.localReply(w, http.StatusGatewayTimeout, "UT", "upstream request timeout\n")
	default:
		ls.p.opts.Logger.Debug("upstream error", "route", x.entry.name, "err", err)
		x.localReply(w, http.StatusBadGateway, "UC", "upstream error\n")
	}
}

// finish records metrics and the access log entry of a request.
func (p *Proxy) finish(x *exchange) {
	d := time.Since(x.start)
	stats := x.g.noRoute
	if x.be != nil && x.be.c != nil {
		stats = x.be.stats
	} else if x.entry != nil {
		stats = x.entry.stats
	}
	stats.Observe(x.status, d, x.bytesIn, x.bytesOut)
	if p.opts.AccessLog == nil {
		return
	}
	e := &telemetry.Entry{
		Time:             x.start,
		Method:           x.method,
		Authority:        x.authority,
		Path:             x.path,
		Protocol:         x.proto,
		Status:           x.status,
		Duration:         d,
		UpstreamDuration: x.upDur,
		BytesIn:          x.bytesIn,
		BytesOut:         x.bytesOut,
		Flags:            x.flags,
		RequestID:        x.reqID,
		Gateway:          x.g.gateway,
	}
	if x.entry != nil {
		e.Route, e.Gateway = x.entry.name, x.entry.gateway
	}
	switch {
	case x.endpoint != "":
		e.Upstream = x.endpoint
	case x.be != nil:
		e.Upstream = x.be.cluster
	}
	p.opts.AccessLog.Log(e)
}

// bodyReader counts the request body on its way upstream, enforces
// MaxBodyBytes and, for a mirrored request, keeps a copy of a small body.
//
// Read may run on an upstream goroutine while the handler looks at the
// counters, hence the atomics.
type bodyReader struct {
	r        io.ReadCloser
	left     int64 // touched by Read only
	n        atomic.Int64
	tooLarge atomic.Bool
	tee      *mirrorSet
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errBodyTooLarge
	}
	n, err := b.r.Read(p)
	b.n.Add(int64(n))
	if b.left -= int64(n); b.left < 0 {
		b.tooLarge.Store(true)
		return 0, errBodyTooLarge
	}
	if b.tee != nil {
		b.tee.body(p[:n], err == io.EOF)
	}
	return n, err
}

func (b *bodyReader) Close() error { return b.r.Close() }

var errBodyTooLarge = errors.New("request body too large")
