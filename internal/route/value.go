package route

import (
	"net/url"
	"strings"
)

// headerHolds compares the values of one header, joined with "," when it
// was sent several times. A missing header never matches.
func headerHolds(m *valueMatch, vals []string) bool {
	switch {
	case len(vals) == 0:
		return false
	case len(vals) == 1:
		return m.match(vals[0])
	case m.re != nil:
		return m.re.MatchString(strings.Join(vals, ",")) // rare: allocates
	}
	// Compare with the joined value without building it.
	want := m.value
	for i, v := range vals {
		if i > 0 {
			if len(want) == 0 || want[0] != ',' {
				return false
			}
			want = want[1:]
		}
		if !strings.HasPrefix(want, v) {
			return false
		}
		want = want[len(v):]
	}
	return want == ""
}

// queryHolds compares the first value of the parameter m.name in a raw
// query. Pairs are read as url.ParseQuery reads them: separated by "&",
// pairs containing ";" or with a malformed escape are skipped, "+" is a
// space, and names and values are percent-decoded.
func queryHolds(m *valueMatch, raw string) bool {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if eq, ok := unescapedEqual(k, m.name); !ok || !eq {
			continue
		}
		if !validEscapes(v) {
			continue
		}
		if !hasEscapes(v) {
			return m.match(v)
		}
		if m.re == nil {
			eq, _ := unescapedEqual(v, m.value)
			return eq
		}
		d, _ := url.QueryUnescape(v) // rare: allocates
		return m.re.MatchString(d)
	}
	return false
}

func hasEscapes(s string) bool {
	return strings.IndexByte(s, '%') >= 0 || strings.IndexByte(s, '+') >= 0
}

// validEscapes reports whether every '%' in s starts a two-digit hex escape.
func validEscapes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

// unescapedEqual reports whether s, query-unescaped, equals want, and
// whether s is well-formed; it reads all of s either way.
func unescapedEqual(s, want string) (eq, ok bool) {
	if !hasEscapes(s) {
		return s == want, true
	}
	eq = true
	j := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false, false
			}
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		case '+':
			c = ' '
		}
		if eq && (j >= len(want) || want[j] != c) {
			eq = false
		}
		j++
	}
	return eq && j == len(want), true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
