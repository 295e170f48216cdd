package translate

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"causeway.dev/causeway/internal/ir"
)

// corsOriginRE is Gateway API's CORSOrigin pattern: "*", or http(s)://
// then a host that is a DNS name, "*." and a DNS name, or "*", then an
// optional port.
var corsOriginRE = regexp.MustCompile(`^(https?)://((\*\.)?([a-zA-Z0-9-]+\.)*[a-zA-Z0-9-]+|\*)(:([0-9]{1,5}))?$`)

// corsMethods are the values of HTTPMethodWithWildcard other than "*".
var corsMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

// corsFilter converts a CORS filter. Origins are lower-cased (scheme and
// host are case-insensitive); an unset maxAge stays 0, which the IR reads
// as Gateway API's default of 5 seconds. "*" with allowCredentials is
// valid: the proxy then echoes the request's origin, method and headers.
func corsFilter(f *gwv1.HTTPCORSFilter, field string) (*ir.CORS, *fieldErr) {
	if f == nil {
		return nil, missing(field)
	}
	c := &ir.CORS{MaxAge: f.MaxAge}
	if f.AllowCredentials != nil {
		c.AllowCredentials = *f.AllowCredentials
	}
	for i, o := range f.AllowOrigins {
		where := fmt.Sprintf("%s.allowOrigins[%d]", field, i)
		s := string(o)
		if s != "*" {
			m := corsOriginRE.FindStringSubmatch(s)
			if m == nil {
				return nil, unsupported(where, "%q is not an origin such as https://example.com, https://*.example.com:8443 or *", s)
			}
			if m[6] != "" {
				if p, _ := strconv.Atoi(m[6]); p < 1 || p > 65535 {
					return nil, unsupported(where, "port %s is out of range 1-65535", m[6])
				}
			}
			s = strings.ToLower(s)
		}
		c.AllowOrigins = append(c.AllowOrigins, s)
	}
	if err := corsStarAlone(c.AllowOrigins, field+".allowOrigins", "allowOrigins cannot contain '*' alongside other origins"); err != nil {
		return nil, err
	}
	for i, m := range f.AllowMethods {
		if s := string(m); s != "*" && !corsMethods[s] {
			return nil, unsupported(fmt.Sprintf("%s.allowMethods[%d]", field, i),
				"method %q is not one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH or *", s)
		}
		c.AllowMethods = append(c.AllowMethods, string(m))
	}
	if err := corsStarAlone(c.AllowMethods, field+".allowMethods", "allowMethods cannot contain '*' alongside other methods"); err != nil {
		return nil, err
	}
	var err *fieldErr
	if c.AllowHeaders, err = corsHeaders(f.AllowHeaders, field+".allowHeaders"); err != nil {
		return nil, err
	}
	if err := corsStarAlone(c.AllowHeaders, field+".allowHeaders", "allowHeaders cannot contain '*' alongside other headers"); err != nil {
		return nil, err
	}
	if c.ExposeHeaders, err = corsHeaders(f.ExposeHeaders, field+".exposeHeaders"); err != nil {
		return nil, err
	}
	if f.MaxAge < 0 {
		return nil, unsupported(field+".maxAge", "maxAge %d must be at least 1 second", f.MaxAge)
	}
	return c, nil
}

func corsHeaders(hs []gwv1.HTTPHeaderName, field string) ([]string, *fieldErr) {
	var out []string
	for i, h := range hs {
		if s := string(h); s != "*" && !validHeaderName(s) {
			return nil, unsupported(fmt.Sprintf("%s[%d]", field, i), "%q is not a valid header name", s)
		}
		out = append(out, string(h))
	}
	return out, nil
}

// corsStarAlone enforces Gateway API's rule that "*" stands alone in
// allowOrigins, allowMethods and allowHeaders.
func corsStarAlone(vals []string, field, msg string) *fieldErr {
	for _, v := range vals {
		if v == "*" && len(vals) > 1 {
			return unsupported(field, "%s", msg)
		}
	}
	return nil
}

// backendCORS is the CORS filter of a backendRef, nil if none; it is
// valid, backendFilters having checked it.
func backendCORS(fs []gwv1.HTTPRouteFilter) *ir.CORS {
	for _, f := range fs {
		if f.Type == gwv1.HTTPRouteFilterCORS {
			c, _ := corsFilter(f.CORS, "")
			return c
		}
	}
	return nil
}
