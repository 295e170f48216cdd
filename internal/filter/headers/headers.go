// Package headers implements the Gateway API RequestHeaderModifier and
// ResponseHeaderModifier filters: set, add and remove header fields.
//
// It sits in the proxy's per-route filter chain. The proxy compiles an
// ir.HeaderModifier once per route when a configuration arrives (Compile),
// then applies it to the outbound request headers before forwarding, or to
// the backend's response headers before they are written downstream
// (Modifier.Apply). A Modifier is immutable and safe for concurrent use.
package headers

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"

	"causeway.dev/causeway/internal/ir"
)

// Modifier is a compiled header modifier. The nil *Modifier modifies
// nothing.
type Modifier struct {
	set    []field
	add    []field
	remove []string // canonical names
}

// field is one canonical name with its value, pre-wrapped in a slice of
// capacity one so that Apply can install it without allocating; the cap
// makes any later append copy instead of writing into the shared array.
type field struct {
	name string
	vals []string
}

// Compile returns nil for a nil or empty modifier. Names are canonicalised
// (textproto.CanonicalMIMEHeaderKey) so that matching is case-insensitive,
// as Gateway API requires. Within Set and within Add, the first of several
// entries with equivalent names wins and later ones are ignored (Gateway
// API HTTPHeader). Compile does not reject invalid input; the translator
// calls Validate for that.
func Compile(m *ir.HeaderModifier) *Modifier {
	if m == nil || len(m.Set)+len(m.Add)+len(m.Remove) == 0 {
		return nil
	}
	return &Modifier{
		set:    fields(m.Set),
		add:    fields(m.Add),
		remove: names(m.Remove),
	}
}

func fields(hs []ir.Header) []field {
	var out []field
	for _, h := range hs {
		name := textproto.CanonicalMIMEHeaderKey(h.Name)
		if seen(out, name) {
			continue
		}
		out = append(out, field{name: name, vals: []string{h.Value}[:1:1]})
	}
	return out
}

func seen(fs []field, name string) bool {
	for _, f := range fs {
		if f.name == name {
			return true
		}
	}
	return false
}

func names(ns []string) []string {
	var out []string
	for _, n := range ns {
		out = append(out, textproto.CanonicalMIMEHeaderKey(n))
	}
	return out
}

// Apply edits h in place: each Set name gets exactly its value (existing
// values are replaced), each Add value is appended after any existing
// values, and each Remove name is deleted. Gateway API forbids naming one
// header in two actions, so the order (set, add, remove) only matters for
// configurations Validate rejects.
//
// h must have canonical keys, as net/http produces. The value slices that
// Apply installs are shared between requests: callers must replace header
// values (Set, Add, Del) rather than write into h[name][i].
//
// Apply does not allocate unless Add appends to an existing header or the
// map must grow.
func (m *Modifier) Apply(h http.Header) {
	if m == nil {
		return
	}
	for _, f := range m.set {
		h[f.name] = f.vals
	}
	for _, f := range m.add {
		if old := h[f.name]; len(old) > 0 {
			h[f.name] = append(old, f.vals[0])
		} else {
			h[f.name] = f.vals
		}
	}
	for _, n := range m.remove {
		delete(h, n)
	}
}

// Validate reports whether m is a valid Gateway API header filter: names
// are HTTP tokens, values hold no control characters other than tab (a CR
// or LF would split the header), and no name is used twice across Set, Add
// and Remove (compared case-insensitively). A nil modifier is valid.
func Validate(m *ir.HeaderModifier) error {
	if m == nil {
		return nil
	}
	used := map[string]string{} // canonical name -> action that used it
	var errs []error
	check := func(action, name string) {
		if !validName(name) {
			errs = append(errs, fmt.Errorf("%s: invalid header name %q", action, name))
			return
		}
		c := textproto.CanonicalMIMEHeaderKey(name)
		if prev, ok := used[c]; ok {
			errs = append(errs, fmt.Errorf("%s: header %q already used by %s", action, name, prev))
			return
		}
		used[c] = action
	}
	for _, h := range m.Set {
		check("set", h.Name)
		if !validValue(h.Value) {
			errs = append(errs, fmt.Errorf("set: invalid value for header %q", h.Name))
		}
	}
	for _, h := range m.Add {
		check("add", h.Name)
		if !validValue(h.Value) {
			errs = append(errs, fmt.Errorf("add: invalid value for header %q", h.Name))
		}
	}
	for _, n := range m.Remove {
		check("remove", n)
	}
	return errors.Join(errs...)
}

// validName reports whether s is an RFC 9110 token.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// validValue reports whether s is a field value without CR, LF, NUL or other
// control characters (tab allowed), so it cannot inject a header line.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
