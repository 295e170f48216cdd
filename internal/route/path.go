package route

// NormalizePath returns p normalised for matching and forwarding, and false
// if p is not acceptable. When p is already normal it returns p itself
// without allocating.
//
// A path is rejected if it
//   - does not start with "/" (an OPTIONS "*" target is not a path: the
//     caller handles it),
//   - contains a control character (bytes below 0x20, and 0x7F), including
//     NUL, or the escape "%00",
//   - has a '%' not followed by two hex digits.
//
// Otherwise, in one pass over the segments:
//   - escapes of unreserved characters (ALPHA / DIGIT / "-" / "." / "_" /
//     "~") are decoded and every other escape is written with upper-case
//     hex, so that one resource has one spelling (RFC 3986 6.2.2.1-2);
//     "%2F" and "%5C" stay encoded: they are data, not separators;
//   - empty segments are dropped ("//" becomes "/"), since many backends
//     merge slashes and a route must see what the backend sees;
//   - "." and ".." segments are removed as RFC 3986 5.2.4 says, after
//     decoding, so "%2E%2E" cannot climb past a route's prefix; ".." at
//     the root stays at the root;
//   - a trailing "/" is kept (and added where a dot segment ended the path,
//     as "/a/b/.." gives "/a/").
//
// A raw backslash is not a separator and is kept as is; bytes of 0x80 and
// above are kept as is.
func NormalizePath(p string) (string, bool) {
	if len(p) == 0 || p[0] != '/' {
		return "", false
	}
	switch isNormal(p) {
	case normal:
		return p, true
	case invalid:
		return "", false
	}
	return normalize(p)
}

type verdict int

const (
	normal verdict = iota
	invalid
	rewrite
)

// isNormal tells whether p (starting with '/') is already normal, invalid,
// or must be rewritten. It never allocates.
func isNormal(p string) verdict {
	v := normal
	segStart := 1 // start of the current segment
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			switch seg := p[segStart:i]; seg {
			case ".", "..":
				v = rewrite
			case "":
				if i < len(p) { // "//"; an empty last segment is a trailing slash
					v = rewrite
				}
			}
			segStart = i + 1
			continue
		}
		c := p[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return invalid
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return invalid
			}
			h, l := p[i+1], p[i+2]
			d := unhex(h)<<4 | unhex(l)
			if d == 0 {
				return invalid
			}
			if unreserved(d) || isLowerHex(h) || isLowerHex(l) {
				v = rewrite
			}
			i += 2
		}
	}
	return v
}

// normalize is the slow path of NormalizePath.
func normalize(p string) (string, bool) {
	out := make([]byte, 0, len(p))
	trailing := false
	for rest := p[1:]; ; {
		var seg string
		i := indexSlash(rest)
		if i < 0 {
			seg = rest
		} else {
			seg = rest[:i]
		}
		start := len(out)
		out = append(out, '/')
		for j := 0; j < len(seg); j++ {
			c := seg[j]
			switch {
			case c < 0x20 || c == 0x7f:
				return "", false
			case c == '%':
				if j+2 >= len(seg) || !isHex(seg[j+1]) || !isHex(seg[j+2]) {
					return "", false
				}
				d := unhex(seg[j+1])<<4 | unhex(seg[j+2])
				if d == 0 {
					return "", false
				}
				if unreserved(d) {
					out = append(out, d)
				} else {
					out = append(out, '%', upperHex[d>>4], upperHex[d&15])
				}
				j += 2
			default:
				out = append(out, c)
			}
		}
		switch string(out[start+1:]) {
		case "", ".":
			out = out[:start]
			trailing = true
		case "..":
			out = out[:start]
			for len(out) > 0 && out[len(out)-1] != '/' {
				out = out[:len(out)-1]
			}
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			trailing = true
		default:
			trailing = false
		}
		if i < 0 {
			break
		}
		rest = rest[i+1:]
	}
	if len(out) == 0 || trailing {
		out = append(out, '/')
	}
	return string(out), true
}

func indexSlash(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return i
		}
	}
	return -1
}

const upperHex = "0123456789ABCDEF"

func isLowerHex(c byte) bool { return 'a' <= c && c <= 'f' }

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
