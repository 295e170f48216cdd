package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// newH2CTransport returns a Transport speaking HTTP/2 with prior knowledge,
// over cleartext, to e only; over TLS (ALPN h2) when e has TLS.
// Compression is off: a proxy passes bodies through as they are.
func newH2CTransport(e *endpoint, idle time.Duration) *http.Transport {
	var p http.Protocols
	if e.tls != nil {
		p.SetHTTP2(true)
		return &http.Transport{
			Protocols:          &p,
			DialTLSContext:     func(ctx context.Context, _, _ string) (net.Conn, error) { return e.dial(ctx) },
			DisableCompression: true,
			IdleConnTimeout:    idle,
			ForceAttemptHTTP2:  true,
		}
	}
	p.SetUnencryptedHTTP2(true)
	return &http.Transport{
		Protocols:          &p,
		DialContext:        func(ctx context.Context, _, _ string) (net.Conn, error) { return e.dial(ctx) },
		DisableCompression: true,
		IdleConnTimeout:    idle,
		ForceAttemptHTTP2:  true,
	}
}

// roundTripH2C sends req through e's Transport, which always closes the
// body; a connect failure is reported as retryable only without a body.
func (e *endpoint) roundTripH2C(req *http.Request) (*http.Response, bool, error) {
	scheme := "http"
	if e.tls != nil {
		scheme = "https"
	}
	if req.URL.Scheme != scheme || req.URL.Host == "" {
		r := new(http.Request)
		*r = *req
		u := *req.URL
		u.Scheme = scheme
		if u.Host == "" {
			u.Host = req.Host
		}
		if u.Host == "" {
			u.Host = e.host
		}
		r.URL = &u
		req = r
	}
	resp, err := e.h2.RoundTrip(req)
	if err != nil {
		ctx := req.Context()
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			return nil, false, fmt.Errorf("upstream %s: %w: %w", e.addr, cerr, err)
		}
		noBody := req.Body == nil || req.Body == http.NoBody
		return nil, noBody && errors.Is(err, ErrConnect), fmt.Errorf("upstream %s: %w", e.addr, err)
	}
	return resp, false, nil
}
