// Package filter is the family of per-route HTTP filters of the proxy. It
// holds no code of its own: each filter is one package below it.
//
// Filters sit between the router and the upstream in the data flow:
//
//	listener → router (internal/route) → filters → upstream
//
// Every filter follows the same lifecycle. When a configuration arrives, the
// proxy builds each filter once per route from its IR (internal/ir): the
// constructor validates everything and does no I/O, so a bad configuration is
// refused before it serves a request. The result is immutable and shared by
// all requests of that configuration; applying it per request is a pure
// function of the request that allocates as little as possible and takes no
// lock.
//
// The filters, in the order the IR says they apply (ir.Route):
//
//   - headers: RequestHeaderModifier and ResponseHeaderModifier (set, add,
//     remove header fields);
//   - rewrite: URLRewrite (Host and path of the outbound request), with the
//     ReplacePrefixMatch and ReplaceFullPath path modifiers;
//   - redirect: RequestRedirect (a 3xx with a Location computed from the
//     request; ends the chain).
//
// Each package has a README.md with the HTTPRoute syntax it implements.
package filter
