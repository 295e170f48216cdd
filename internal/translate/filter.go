package translate

import (
	"fmt"
	"net/textproto"
	"regexp"
	"strings"
	"time"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/internal/ir"
	"causeway.dev/causeway/internal/status"
)

// fieldErr is a problem with one field of a route rule: the rule is dropped
// and the route's Accepted condition says why.
type fieldErr struct {
	field  string
	reason string
	msg    string
}

func (e *fieldErr) Error() string { return e.field + ": " + e.msg }

func unsupported(field, format string, args ...any) *fieldErr {
	return &fieldErr{field: field, reason: status.ReasonUnsupportedValue, msg: fmt.Sprintf(format, args...)}
}

// ruleFilters is the IR form of a rule's filters.
type ruleFilters struct {
	reqHeaders, respHeaders *ir.HeaderModifier
	redirect                *ir.Redirect
	rewrite                 *ir.Rewrite
	mirrors                 []*ir.Mirror
	cors                    *ir.CORS
	prefixRewrite           string // field of a ReplacePrefixMatch modifier, "" if none
}

// compileFilters converts a rule's filters. Mirror references that cannot
// be resolved are left out and returned as ref problems, as Gateway API
// requires; everything else invalid is a fieldErr.
func (t *translator) compileFilters(kind, routeNS string, fs []gwv1.HTTPRouteFilter, field string) (*ruleFilters, []status.Condition, *fieldErr) {
	out := &ruleFilters{}
	var refProblems []status.Condition
	seen := map[gwv1.HTTPRouteFilterType]bool{}
	for i, f := range fs {
		ff := fmt.Sprintf("%s.filters[%d]", field, i)
		if seen[f.Type] && f.Type != gwv1.HTTPRouteFilterRequestMirror {
			return nil, nil, unsupported(ff, "filter %s is given twice; it may appear once per rule", f.Type)
		}
		seen[f.Type] = true
		var err *fieldErr
		switch f.Type {
		case gwv1.HTTPRouteFilterRequestHeaderModifier:
			out.reqHeaders, err = headerModifier(f.RequestHeaderModifier, ff+".requestHeaderModifier")
		case gwv1.HTTPRouteFilterResponseHeaderModifier:
			out.respHeaders, err = headerModifier(f.ResponseHeaderModifier, ff+".responseHeaderModifier")
		case gwv1.HTTPRouteFilterRequestRedirect:
			out.redirect, err = redirect(f.RequestRedirect, ff+".requestRedirect")
			if err == nil && out.redirect.Path != nil && out.redirect.Path.Type == ir.ReplacePrefixMatch {
				out.prefixRewrite = ff + ".requestRedirect.path"
			}
		case gwv1.HTTPRouteFilterURLRewrite:
			out.rewrite, err = rewrite(f.URLRewrite, ff+".urlRewrite")
			if err == nil && out.rewrite.Path != nil && out.rewrite.Path.Type == ir.ReplacePrefixMatch {
				out.prefixRewrite = ff + ".urlRewrite.path"
			}
		case gwv1.HTTPRouteFilterCORS:
			out.cors, err = corsFilter(f.CORS, ff+".cors")
		case gwv1.HTTPRouteFilterRequestMirror:
			var m *ir.Mirror
			var problem *status.Condition
			m, problem, err = t.mirror(kind, routeNS, f.RequestMirror, ff+".requestMirror")
			if problem != nil {
				refProblems = append(refProblems, *problem)
			}
			if m != nil {
				out.mirrors = append(out.mirrors, m)
			}
		default:
			err = unsupported(ff+".type", "filter type %q is not supported", f.Type)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if out.redirect != nil && out.rewrite != nil {
		return nil, nil, &fieldErr{field: field + ".filters", reason: reasonIncompatibleFilters,
			msg: "RequestRedirect and URLRewrite cannot be used in the same rule"}
	}
	return out, refProblems, nil
}

// missing reports a filter whose type names a field that is not set.
func missing(field string) *fieldErr {
	return unsupported(field, "the filter's configuration is missing")
}

func headerModifier(f *gwv1.HTTPHeaderFilter, field string) (*ir.HeaderModifier, *fieldErr) {
	if f == nil {
		return nil, missing(field)
	}
	m := &ir.HeaderModifier{}
	seen := map[string]string{}
	use := func(name, where string) (string, *fieldErr) {
		if !validHeaderName(name) {
			return "", unsupported(where, "%q is not a valid header name", name)
		}
		c := textproto.CanonicalMIMEHeaderKey(name)
		if prev, dup := seen[c]; dup {
			return "", unsupported(where, "header %s is already modified by %s", name, prev)
		}
		seen[c] = where
		return c, nil
	}
	for i, h := range f.Set {
		where := fmt.Sprintf("%s.set[%d]", field, i)
		name, err := use(string(h.Name), where)
		if err != nil {
			return nil, err
		}
		if !validHeaderValue(h.Value) {
			return nil, unsupported(where+".value", "header values may not contain control characters")
		}
		m.Set = append(m.Set, ir.Header{Name: name, Value: h.Value})
	}
	for i, h := range f.Add {
		where := fmt.Sprintf("%s.add[%d]", field, i)
		name, err := use(string(h.Name), where)
		if err != nil {
			return nil, err
		}
		if !validHeaderValue(h.Value) {
			return nil, unsupported(where+".value", "header values may not contain control characters")
		}
		m.Add = append(m.Add, ir.Header{Name: name, Value: h.Value})
	}
	for i, h := range f.Remove {
		name, err := use(h, fmt.Sprintf("%s.remove[%d]", field, i))
		if err != nil {
			return nil, err
		}
		m.Remove = append(m.Remove, name)
	}
	return m, nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func redirect(f *gwv1.HTTPRequestRedirectFilter, field string) (*ir.Redirect, *fieldErr) {
	if f == nil {
		return nil, missing(field)
	}
	r := &ir.Redirect{StatusCode: 302}
	if f.Scheme != nil {
		if *f.Scheme != "http" && *f.Scheme != "https" {
			return nil, unsupported(field+".scheme", "scheme %q is not supported; use http or https", *f.Scheme)
		}
		s := *f.Scheme
		r.Scheme = &s
	}
	if f.Hostname != nil {
		h := string(*f.Hostname)
		if err := validHostname(h, false); err != nil {
			return nil, unsupported(field+".hostname", "%v", err)
		}
		r.Hostname = &h
	}
	if f.Port != nil {
		if *f.Port < 1 || *f.Port > 65535 {
			return nil, unsupported(field+".port", "port %d is out of range 1-65535", *f.Port)
		}
		p := int(*f.Port)
		r.Port = &p
	}
	if f.Path != nil {
		p, err := pathModifier(f.Path, field+".path")
		if err != nil {
			return nil, err
		}
		r.Path = p
	}
	if f.StatusCode != nil {
		// 301 and 302 are core; 303, 307 and 308 are extended support.
		switch *f.StatusCode {
		case 301, 302, 303, 307, 308:
		default:
			return nil, unsupported(field+".statusCode", "status code %d is not a redirect; use 301, 302, 303, 307 or 308", *f.StatusCode)
		}
		r.StatusCode = *f.StatusCode
	}
	return r, nil
}

func rewrite(f *gwv1.HTTPURLRewriteFilter, field string) (*ir.Rewrite, *fieldErr) {
	if f == nil {
		return nil, missing(field)
	}
	r := &ir.Rewrite{}
	if f.Hostname != nil {
		h := string(*f.Hostname)
		if err := validHostname(h, false); err != nil {
			return nil, unsupported(field+".hostname", "%v", err)
		}
		r.Hostname = &h
	}
	if f.Path != nil {
		p, err := pathModifier(f.Path, field+".path")
		if err != nil {
			return nil, err
		}
		r.Path = p
	}
	return r, nil
}

func pathModifier(m *gwv1.HTTPPathModifier, field string) (*ir.PathModifier, *fieldErr) {
	var v *string
	var typ ir.PathModifierType
	switch m.Type {
	case gwv1.FullPathHTTPPathModifier:
		v, typ = m.ReplaceFullPath, ir.ReplaceFullPath
		field += ".replaceFullPath"
	case gwv1.PrefixMatchHTTPPathModifier:
		v, typ = m.ReplacePrefixMatch, ir.ReplacePrefixMatch
		field += ".replacePrefixMatch"
	default:
		return nil, unsupported(field+".type", "path modifier type %q is not supported; use ReplaceFullPath or ReplacePrefixMatch", m.Type)
	}
	if v == nil {
		return nil, unsupported(field, "value is required for type %s", m.Type)
	}
	if !strings.HasPrefix(*v, "/") {
		return nil, unsupported(field, "path %q must start with /", *v)
	}
	return &ir.PathModifier{Type: typ, Value: *v}, nil
}

// mirror converts a RequestMirror filter. An unresolvable backend drops the
// mirror (Gateway API: "not configure this backend") and is a ref problem.
func (t *translator) mirror(kind, routeNS string, f *gwv1.HTTPRequestMirrorFilter, field string) (*ir.Mirror, *status.Condition, *fieldErr) {
	if f == nil {
		return nil, nil, missing(field)
	}
	m := &ir.Mirror{Numerator: 1, Denominator: 1}
	switch {
	case f.Percent != nil && f.Fraction != nil:
		return nil, nil, unsupported(field, "only one of percent and fraction may be set")
	case f.Percent != nil:
		if *f.Percent < 0 || *f.Percent > 100 {
			return nil, nil, unsupported(field+".percent", "percent %d is out of range 0-100", *f.Percent)
		}
		m.Numerator, m.Denominator = *f.Percent, 100
	case f.Fraction != nil:
		m.Numerator, m.Denominator = f.Fraction.Numerator, 100
		if f.Fraction.Denominator != nil {
			m.Denominator = *f.Fraction.Denominator
		}
		if m.Denominator < 1 || m.Numerator < 0 || m.Numerator > m.Denominator {
			return nil, nil, unsupported(field+".fraction", "fraction %d/%d must satisfy 0 <= numerator <= denominator and denominator >= 1", m.Numerator, m.Denominator)
		}
	}
	ref := t.resolveBackend(kind, routeNS, f.BackendRef, field+".backendRef")
	if ref.problem != nil {
		return nil, ref.problem, nil
	}
	if m.Numerator == 0 {
		return nil, nil, nil // mirrors nothing
	}
	m.Cluster = ref.cluster
	return m, nil, nil
}

// backendFilters converts the filters of one backendRef: only header
// modifiers are supported there.
func backendFilters(fs []gwv1.HTTPRouteFilter, field string) (req, resp *ir.HeaderModifier, _ *fieldErr) {
	seen := map[gwv1.HTTPRouteFilterType]bool{}
	for i, f := range fs {
		ff := fmt.Sprintf("%s.filters[%d]", field, i)
		if seen[f.Type] {
			return nil, nil, unsupported(ff, "filter %s is given twice", f.Type)
		}
		seen[f.Type] = true
		var err *fieldErr
		switch f.Type {
		case gwv1.HTTPRouteFilterRequestHeaderModifier:
			req, err = headerModifier(f.RequestHeaderModifier, ff+".requestHeaderModifier")
		case gwv1.HTTPRouteFilterResponseHeaderModifier:
			resp, err = headerModifier(f.ResponseHeaderModifier, ff+".responseHeaderModifier")
		case gwv1.HTTPRouteFilterCORS: // converted by backendCORS
			_, err = corsFilter(f.CORS, ff+".cors")
		default:
			err = unsupported(ff+".type", "filter type %q is not supported on a backendRef; only RequestHeaderModifier, ResponseHeaderModifier and CORS", f.Type)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return req, resp, nil
}

// durationRE is GEP-2257's duration syntax, a strict subset of Go's.
var durationRE = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)

func parseDuration(d gwv1.Duration, field string) (ir.Duration, *fieldErr) {
	if !durationRE.MatchString(string(d)) {
		return 0, unsupported(field, "%q is not a duration such as 10s, 1m30s or 500ms", d)
	}
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return 0, unsupported(field, "%q: %v", d, err)
	}
	return ir.Duration(v), nil
}

func timeouts(to *gwv1.HTTPRouteTimeouts, field string) (ir.Timeouts, *fieldErr) {
	var out ir.Timeouts
	if to == nil {
		return out, nil
	}
	var err *fieldErr
	if to.Request != nil {
		if out.Request, err = parseDuration(*to.Request, field+".request"); err != nil {
			return out, err
		}
	}
	if to.BackendRequest != nil {
		if out.BackendRequest, err = parseDuration(*to.BackendRequest, field+".backendRequest"); err != nil {
			return out, err
		}
	}
	if out.Request != 0 && out.BackendRequest > out.Request {
		return out, unsupported(field+".backendRequest", "backendRequest %s is longer than request %s",
			time.Duration(out.BackendRequest), time.Duration(out.Request))
	}
	return out, nil
}
