package proxy

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"causeway.dev/causeway/internal/ir"
)

// Fault injection (ir.Route.Fault), for chaos testing: a sampled request
// is held for a fixed delay (flag DI), then a sampled request is answered
// by the proxy with the configured HTTP or gRPC status (flag FI) instead
// of being forwarded. Both samples are independent; a header match limits
// both to requests that carry the header.

// faultPolicy is a compiled ir.Fault.
type faultPolicy struct {
	delay      time.Duration
	delayPct   uint32
	abortPct   uint32
	status     int // HTTP status of an abort; 0 with grpcStatus set
	grpcStatus int
	header     string
	value      string
}

func compileFault(f *ir.Fault) (*faultPolicy, error) {
	if f == nil {
		return nil, nil
	}
	if f.Delay < 0 || f.DelayPercent < 0 || f.DelayPercent > 100 || f.AbortPercent < 0 || f.AbortPercent > 100 {
		return nil, errors.New("fault: value out of range")
	}
	if f.AbortStatus != 0 && (f.AbortStatus < 200 || f.AbortStatus > 599) || f.AbortGRPCStatus < 0 || f.AbortGRPCStatus > 16 {
		return nil, errors.New("fault: invalid abort status")
	}
	fp := &faultPolicy{
		delay:      time.Duration(f.Delay),
		delayPct:   uint32(f.DelayPercent),
		abortPct:   uint32(f.AbortPercent),
		status:     f.AbortStatus,
		grpcStatus: f.AbortGRPCStatus,
		header:     http.CanonicalHeaderKey(f.Header),
		value:      f.HeaderValue,
	}
	if fp.status == 0 && fp.grpcStatus == 0 {
		fp.abortPct = 0
	}
	if fp.delay == 0 {
		fp.delayPct = 0
	}
	return fp, nil
}

// sampled draws a request with probability pct percent.
func sampled(pct uint32) bool { return pct >= 100 || pct > 0 && rand.Uint32N(100) < pct }

// applies tells whether r is subject to the faults.
func (f *faultPolicy) applies(r *http.Request) bool {
	if f.header == "" {
		return true
	}
	vs, ok := r.Header[f.header]
	if !ok {
		return false
	}
	if f.value == "" {
		return true
	}
	for _, v := range vs {
		if v == f.value {
			return true
		}
	}
	return false
}

// inject runs the faults for r; done means the request was answered (or
// the client left during the delay) and must not be forwarded.
func (x *exchange) inject(w http.ResponseWriter, r *http.Request, f *faultPolicy) (done bool) {
	if !f.applies(r) {
		return false
	}
	if sampled(f.delayPct) {
		x.flags = "DI"
		t := time.NewTimer(f.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			x.status, x.flags = 499, "DC"
			return true
		}
	}
	if !sampled(f.abortPct) {
		return false
	}
	switch {
	case f.grpcStatus != 0:
		x.status, x.flags = http.StatusOK, "FI"
		h := w.Header()
		h["Content-Type"] = grpcContentType
		h["Grpc-Status"] = grpcStatusValues[f.grpcStatus]
		h["Grpc-Message"] = []string{"fault filter abort"}
		w.WriteHeader(http.StatusOK)
	default:
		x.localReply(w, f.status, "FI", "fault filter abort\n")
	}
	return true
}
