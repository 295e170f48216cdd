package push

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Tokens authorise proxies: each bootstrap token allows a set of Gateway
// patterns ("namespace/name", with path.Match wildcards such as "team-a/*").
// A nil *Tokens refuses every proxy. Immutable once built; safe for
// concurrent use.
type Tokens struct {
	// Keyed by the token's SHA-256 so that a lookup's timing reveals
	// nothing about the tokens' bytes.
	allow map[[sha256.Size]byte][]string
}

// ParseTokens reads one token per line: the token, then its Gateway
// patterns, separated by spaces. Blank lines and lines starting with '#'
// are skipped.
func ParseTokens(r io.Reader) (*Tokens, error) {
	t := &Tokens{allow: map[[sha256.Size]byte][]string{}}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("tokens line %d: want a token and at least one Gateway pattern", n)
		}
		for _, p := range f[1:] {
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("tokens line %d: pattern %q: %w", n, p, err)
			}
		}
		k := sha256.Sum256([]byte(f[0]))
		t.allow[k] = append(t.allow[k], f[1:]...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading tokens: %w", err)
	}
	return t, nil
}

// LoadTokens reads a tokens file (see ParseTokens).
func LoadTokens(file string) (*Tokens, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	defer f.Close()
	return ParseTokens(f)
}

// Authorize reports why token may not serve gateways, or nil if it may
// serve every one of them.
func (t *Tokens) Authorize(token string, gateways []string) error {
	if t == nil || token == "" {
		return fmt.Errorf("unknown token")
	}
	pats, ok := t.allow[sha256.Sum256([]byte(token))]
	if !ok {
		return fmt.Errorf("unknown token")
	}
	if len(gateways) == 0 {
		return fmt.Errorf("no gateways requested")
	}
	for _, g := range gateways {
		allowed := false
		for _, p := range pats {
			if ok, _ := path.Match(p, g); ok {
				allowed = true
				break
			}
		}
		if !allowed {
			return fmt.Errorf("token does not allow gateway %s", g)
		}
	}
	return nil
}
