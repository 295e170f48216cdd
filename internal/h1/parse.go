package h1

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// What the parser refuses, and with which status (the connection is then
// closed):
//
//   - a request line that is not "method SP target SP version CRLF" with
//     single spaces, a method that is not a token, a target with bytes
//     outside visible ASCII or with '#': 400; longer than
//     MaxRequestLineBytes: 414; a version other than HTTP/1.0 or HTTP/1.1:
//     505 when it looks like one, else 400;
//   - a target form that does not fit the method: authority-form only and
//     always for CONNECT, "*" only for OPTIONS, absolute-form only with an
//     http or https scheme and a host: 400;
//   - bare LF or CR line ends, obs-fold, a field name that is not a token
//     or has whitespace before the colon, a value with a control byte
//     other than HTAB: 400; request line and fields together longer than
//     MaxHeaderBytes: 431;
//   - no Host in HTTP/1.1 (CONNECT excepted), more than one Host, or an
//     invalid one: 400;
//   - Content-Length that is not digits only, or duplicates that differ:
//     400;
//   - Transfer-Encoding other than exactly one "chunked": 501; with
//     Content-Length, or in HTTP/1.0: 400;
//   - Expect other than 100-continue: 417.

// reqError is a request the server answers itself, then closes.
type reqError struct {
	code int
	msg  string
}

func (e *reqError) Error() string { return strconv.Itoa(e.code) + " " + e.msg }

func bad(msg string) error { return &reqError{http.StatusBadRequest, msg} }

// framing is what the header says about the body and the connection.
type framing struct {
	contentLength int64 // -1: chunked
	hasBody       bool
	expect        bool // Expect: 100-continue, with a body, in HTTP/1.1
	close         bool // the client asked to close (or HTTP/1.0 without keep-alive)
	keepAlive10   bool // HTTP/1.0 with Connection: keep-alive
}

// head is where a request header is parsed into: the parts a connection
// reuses from one request to the next.
type head struct {
	r    *http.Request
	u    *url.URL
	h    http.Header
	vals []string // backing store of h's values
	nv   int      // used entries of vals
}

// chunkedTE is Request.TransferEncoding of a chunked request, shared.
var chunkedTE = []string{"chunked"}

// parse parses a request header block s (request line to the empty line,
// CRLFs included) into hd, which has been reset.
func (hd *head) parse(s string, maxLine int) (framing, error) {
	var f framing
	r := hd.r
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return f, bad("malformed request line")
	}
	if i > maxLine {
		return f, &reqError{http.StatusRequestURITooLong, "request line too long"}
	}
	if i == 0 || s[i-1] != '\r' {
		return f, bad("bare LF")
	}
	line := s[:i-1]
	rest := s[i+1:]

	sp := strings.IndexByte(line, ' ')
	if sp <= 0 {
		return f, bad("malformed request line")
	}
	method := line[:sp]
	line = line[sp+1:]
	sp = strings.IndexByte(line, ' ')
	if sp <= 0 {
		return f, bad("malformed request line")
	}
	target, version := line[:sp], line[sp+1:]
	if !isToken(method) {
		return f, bad("invalid method")
	}
	switch version {
	case "HTTP/1.1":
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	case "HTTP/1.0":
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0
	default:
		if len(version) == 8 && strings.HasPrefix(version, "HTTP/") && isDigit(version[5]) && version[6] == '.' && isDigit(version[7]) {
			return f, &reqError{http.StatusHTTPVersionNotSupported, "unsupported HTTP version"}
		}
		return f, bad("malformed HTTP version")
	}
	r.Method = internMethod(method)
	r.RequestURI = target
	if err := hd.parseTarget(r.Method, target); err != nil {
		return f, err
	}
	is11 := r.ProtoMinor == 1

	var (
		nHost      int
		host       string
		clSeen     bool
		nTE        int
		teChunked  bool
		expect     string
		connClose  bool
		connKeep   bool
		hasTrailer bool
	)
	hd.ensureVals(strings.Count(rest, "\n"))
	for {
		i := strings.IndexByte(rest, '\n')
		if i < 0 {
			return f, bad("malformed header")
		}
		if i == 0 || rest[i-1] != '\r' {
			return f, bad("bare LF")
		}
		ln := rest[:i-1]
		rest = rest[i+1:]
		if ln == "" {
			break
		}
		if ln[0] == ' ' || ln[0] == '\t' {
			return f, bad("obsolete line folding")
		}
		colon := strings.IndexByte(ln, ':')
		if colon <= 0 {
			return f, bad("malformed header line")
		}
		key, ok := canonicalKey(ln[:colon])
		if !ok {
			return f, bad("invalid header name")
		}
		v := trimOWS(ln[colon+1:])
		if !validValue(v) {
			return f, bad("invalid header value")
		}
		switch key {
		case "Host":
			nHost++
			host = v
			continue // kept in r.Host only, as net/http does
		case "Content-Length":
			n, ok := parseLength(v)
			if !ok || clSeen && n != f.contentLength {
				return f, bad("invalid Content-Length")
			}
			if clSeen {
				continue // one value is enough, as net/http keeps it
			}
			clSeen, f.contentLength = true, n
		case "Transfer-Encoding":
			nTE++
			teChunked = strings.EqualFold(v, "chunked")
			continue // in r.TransferEncoding, as net/http does
		case "Connection":
			forTokens(v, func(t string) {
				switch {
				case strings.EqualFold(t, "close"):
					connClose = true
				case strings.EqualFold(t, "keep-alive"):
					connKeep = true
				}
			})
		case "Expect":
			expect = v
		case "Trailer":
			hasTrailer = true
		}
		hd.add(key, v)
	}
	if rest != "" {
		return f, bad("data after header")
	}

	switch {
	case nHost > 1:
		return f, bad("multiple Host headers")
	case nHost == 0 && is11 && r.Method != http.MethodConnect:
		return f, bad("missing required Host header")
	case nHost == 1 && !validHost(host):
		return f, bad("invalid Host header")
	}
	if r.Host == "" { // absolute- and authority-form set it already
		r.Host = host
	}

	if nTE > 0 {
		switch {
		case !is11:
			return f, bad("Transfer-Encoding in HTTP/1.0")
		case clSeen:
			return f, bad("both Transfer-Encoding and Content-Length")
		case nTE > 1 || !teChunked:
			return f, &reqError{http.StatusNotImplemented, "unsupported transfer encoding"}
		}
		f.contentLength, f.hasBody = -1, true
		r.TransferEncoding = chunkedTE
		r.ContentLength = -1
		if hasTrailer {
			if err := declareTrailers(r, hd.h["Trailer"]); err != nil {
				return f, err
			}
			delete(hd.h, "Trailer")
		}
	} else {
		f.hasBody = f.contentLength > 0
		r.ContentLength = f.contentLength
	}
	if expect != "" {
		if !strings.EqualFold(expect, "100-continue") {
			return f, &reqError{http.StatusExpectationFailed, "unsupported Expect"}
		}
		f.expect = is11 && f.hasBody
	}
	if is11 {
		f.close = connClose
	} else {
		f.keepAlive10 = connKeep && !connClose
		f.close = !f.keepAlive10
	}
	r.Close = f.close
	return f, nil
}

// parseTarget fills URL (and Host for the absolute and authority forms).
func (hd *head) parseTarget(method, t string) error {
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return bad("invalid request target")
		}
	}
	u := hd.u
	switch {
	case method == http.MethodConnect:
		// authority-form: host ":" port.
		if t[0] == '/' || strings.Contains(t, "/") {
			return bad("CONNECT needs an authority")
		}
		h, port, ok := cutPort(t)
		if !ok || h == "" || !validHost(t) || !isDigits(port) {
			return bad("invalid CONNECT authority")
		}
		*u = url.URL{Host: t}
		hd.r.Host = t
	case t[0] == '/':
		path, q, hasQ := strings.Cut(t, "?")
		if !safePath(path) {
			pu, err := url.ParseRequestURI(t)
			if err != nil {
				return bad("invalid request target")
			}
			*u = *pu
			return nil
		}
		*u = url.URL{Path: path, RawQuery: q, ForceQuery: hasQ && q == ""}
	case t == "*":
		if method != http.MethodOptions {
			return bad("asterisk-form without OPTIONS")
		}
		*u = url.URL{Path: "*"}
	default:
		pu, err := url.ParseRequestURI(t)
		if err != nil || pu.Host == "" || pu.Scheme != "http" && pu.Scheme != "https" || !validHost(pu.Host) || pu.User != nil {
			return bad("invalid absolute-form target")
		}
		*u = *pu
		hd.r.Host = pu.Host
	}
	return nil
}

// declareTrailers builds r.Trailer from the Trailer field, as net/http
// does, refusing the fields that frame the message.
func declareTrailers(r *http.Request, vals []string) error {
	for _, v := range vals {
		bad := false
		forTokens(v, func(t string) {
			k := http.CanonicalHeaderKey(t)
			switch k {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				bad = true
				return
			}
			if r.Trailer == nil {
				r.Trailer = http.Header{}
			}
			r.Trailer[k] = nil
		})
		if bad {
			return &reqError{http.StatusBadRequest, "bad trailer key"}
		}
	}
	return nil
}

func (hd *head) ensureVals(n int) {
	if cap(hd.vals) < n {
		hd.vals = make([]string, n)
	}
	hd.vals = hd.vals[:cap(hd.vals)]
}

// add appends a field value; each value slice has its capacity capped,
// so that an append by the handler copies rather than overwrites.
func (hd *head) add(k, v string) {
	if old := hd.h[k]; old != nil {
		hd.h[k] = append(old, v)
		return
	}
	hd.vals[hd.nv] = v
	hd.h[k] = hd.vals[hd.nv : hd.nv+1 : hd.nv+1]
	hd.nv++
}

// reset clears hd for the next request.
func (hd *head) reset() {
	clear(hd.h)
	clear(hd.vals[:hd.nv])
	hd.nv = 0
}

// parseLength parses a Content-Length value: digits only, no sign, no
// list, at most 18 digits.
func parseLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// forTokens calls fn with each non-empty element of a comma-separated
// list, trimmed.
func forTokens(v string, fn func(string)) {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if t = trimOWS(t); t != "" {
			fn(t)
		}
	}
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// validValue: field-content is visible ASCII, obs-text, SP and HTAB.
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// cutPort splits host:port, with an IP literal in brackets.
func cutPort(a string) (host, port string, ok bool) {
	i := strings.LastIndexByte(a, ':')
	if i < 0 || strings.IndexByte(a[i:], ']') >= 0 {
		return a, "", false
	}
	return a[:i], a[i+1:], true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// validHost accepts uri-host [":" port]: reg-name and IPv4 characters,
// or an IP literal in brackets, and digits after the last colon.
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		if !hostByte[h[i]] {
			return false
		}
	}
	return true
}

var (
	tchar    [256]bool
	hostByte [256]bool
	pathByte [256]bool
)

func init() {
	for c := 0; c < 256; c++ {
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		tchar[c] = alnum || strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
		hostByte[c] = alnum || strings.IndexByte("-._~!$&'()*+,;=:[]%", byte(c)) >= 0
		pathByte[c] = alnum || strings.IndexByte("-._~$&+,;=:@/", byte(c)) >= 0 // what url.URL.EscapedPath leaves as is
	}
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tchar[s[i]] {
			return false
		}
	}
	return true
}

// safePath tells whether an origin-form path needs neither unescaping
// nor re-escaping, so that URL.Path is the path itself.
func safePath(p string) bool {
	for i := 0; i < len(p); i++ {
		if !pathByte[p[i]] {
			return false
		}
	}
	return true
}

// canonicalKey validates a field name and returns its canonical form,
// without allocating when the name is already canonical or common.
func canonicalKey(name string) (string, bool) {
	upper := true
	canonical := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !tchar[c] {
			return "", false
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
		}
		upper = c == '-'
	}
	if canonical {
		return name, true
	}
	if len(name) <= 64 {
		var buf [64]byte
		b := buf[:len(name)]
		upper = true
		for i := 0; i < len(name); i++ {
			c := name[i]
			if upper && 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			} else if !upper && 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b[i] = c
			upper = c == '-'
		}
		if k, ok := commonKeys[string(b)]; ok {
			return k, true
		}
		return string(b), true
	}
	return http.CanonicalHeaderKey(name), true
}

var commonKeys = map[string]string{}

func init() {
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Authorization", "Cache-Control", "Connection", "Content-Encoding", "Content-Length",
		"Content-Type", "Cookie", "Date", "Etag", "Expect", "Forwarded", "Grpc-Timeout",
		"Host", "If-Match", "If-Modified-Since", "If-None-Match", "If-Range",
		"If-Unmodified-Since", "Keep-Alive", "Origin", "Pragma", "Proxy-Authorization",
		"Proxy-Connection", "Range", "Referer", "Sec-Websocket-Key", "Sec-Websocket-Version",
		"Sec-Websocket-Extensions", "Sec-Websocket-Protocol", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade", "User-Agent", "Via", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id",
	} {
		commonKeys[k] = k
	}
}

// internMethod returns a constant for the common methods, so that the
// method string does not keep the header block alive.
func internMethod(m string) string {
	switch m {
	case "GET":
		return http.MethodGet
	case "POST":
		return http.MethodPost
	case "HEAD":
		return http.MethodHead
	case "PUT":
		return http.MethodPut
	case "DELETE":
		return http.MethodDelete
	case "OPTIONS":
		return http.MethodOptions
	case "PATCH":
		return http.MethodPatch
	case "CONNECT":
		return http.MethodConnect
	}
	return m
}
