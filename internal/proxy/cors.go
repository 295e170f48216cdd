package proxy

import (
	"net/http"

	"causeway.dev/causeway/internal/filter/cors"
	"causeway.dev/causeway/internal/ir"
)

// This file is the CORS hook of the request path (internal/filter/cors):
// compileCORS at configuration time, corsPreflight once the route is known,
// corsHeaders wherever response headers are written.

// compileCORS builds the CORS policies of a route and of its backends
// (e.backends holds r.Backends without the nil ones, in order).
func compileCORS(e *routeEntry, r *ir.Route) error {
	var err error
	if e.cors, err = cors.New(r.CORS); err != nil {
		return err
	}
	i := 0
	for _, b := range r.Backends {
		if b == nil {
			continue
		}
		if e.backends[i].cors, err = cors.New(b.CORS); err != nil {
			return err
		}
		e.backendCORS = e.backendCORS || e.backends[i].cors != nil
		i++
	}
	return nil
}

// corsPreflight notes the Origin of a request to a route with CORS and
// answers the request, true, when it is a preflight: 204 with the CORS
// headers (none for an origin that is not allowed), never forwarded.
//
// When backends have their own CORS, a preflight is answered with the
// policy of a backend picked as for forwarding (the rule's when that
// backend has none). A route without any CORS costs one branch.
func (x *exchange) corsPreflight(w http.ResponseWriter, r *http.Request, e *routeEntry) bool {
	if e.cors == nil && !e.backendCORS {
		return false
	}
	x.origin = cors.Origin(r.Header)
	if !cors.IsPreflight(r) {
		return false
	}
	p := e.cors
	if e.backendCORS {
		if be := e.pick(); be != nil && be.cors != nil {
			p = be.cors
		}
	}
	if p == nil {
		return false // forwarded like any OPTIONS request
	}
	p.Preflight(w.Header(), r.Header)
	w.WriteHeader(http.StatusNoContent)
	x.status = http.StatusNoContent
	return true
}

// corsHeaders adds the CORS response headers to h, the headers of a
// response to a request that is not a preflight: the backend's policy if
// it has one, else the route's.
func (x *exchange) corsHeaders(h http.Header) {
	if x.entry == nil {
		return
	}
	p := x.entry.cors
	if x.be != nil && x.be.cors != nil {
		p = x.be.cors
	}
	if p != nil {
		p.Decorate(h, x.origin)
	}
}
