package push

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	pb "causeway.dev/causeway/api/push/v1alpha1"
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

// DefaultTrustDomain is the trust domain of proxy certificates when
// Options.TrustDomain is "".
const DefaultTrustDomain = "causeway.local"

// CertGateways returns the Gateways ("namespace/name") a proxy presenting
// cert may serve. A certificate names each of them in a SAN of trust
// domain td:
//
//   - URI SAN spiffe://TD/gateway/NAMESPACE/NAME (the SPIFFE ID of the
//     Gateway's proxies, beside the workloads' spiffe://TD/ns/NS/sa/SA);
//   - DNS SAN NAME.NAMESPACE.gateway.TD (for PKIs that issue DNS names
//     only).
//
// Other SANs are ignored; a certificate may name several Gateways, never a
// pattern of them.
func CertGateways(cert *x509.Certificate, td string) []string {
	var out []string
	add := func(ns, name string) {
		if ns != "" && name != "" && !strings.ContainsAny(ns+name, "/*") {
			g := ns + "/" + name
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	for _, u := range cert.URIs {
		if u.Scheme != "spiffe" || u.Host != td || u.RawQuery != "" || u.Fragment != "" {
			continue
		}
		f := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
		if len(f) == 3 && f[0] == "gateway" {
			add(f[1], f[2])
		}
	}
	for _, d := range cert.DNSNames {
		rest, ok := strings.CutSuffix(d, ".gateway."+td)
		if !ok {
			continue
		}
		if name, ns, ok := strings.Cut(rest, "."); ok && !strings.Contains(ns, ".") {
			add(ns, name)
		}
	}
	return out
}

// authorize decides whether node may serve the Gateways it asks for: by
// its client certificate when the TLS layer verified one, else by its
// token. It returns how the proxy was identified, for the status table.
func (s *Server) authorize(ctx context.Context, node *pb.Node) (string, error) {
	gws := node.GetGateways()
	if len(gws) == 0 {
		return "", errors.New("no gateways requested")
	}
	if cert := verifiedCert(ctx); cert != nil {
		allowed := CertGateways(cert, s.opts.TrustDomain)
		if len(allowed) == 0 {
			return "", fmt.Errorf("client certificate %q names no Gateway of trust domain %s (want a URI SAN spiffe://%[2]s/gateway/NAMESPACE/NAME or a DNS SAN NAME.NAMESPACE.gateway.%[2]s)",
				cert.Subject.CommonName, s.opts.TrustDomain)
		}
		for _, g := range gws {
			if !slices.Contains(allowed, g) {
				return "", fmt.Errorf("client certificate allows gateways %s, not gateway %s", strings.Join(allowed, ","), g)
			}
		}
		return "certificate " + strings.Join(allowed, ","), nil
	}
	if node.GetToken() == "" {
		return "", errors.New("neither a client certificate from a trusted CA nor a bootstrap token was presented")
	}
	if err := s.opts.Tokens.Authorize(node.GetToken(), gws); err != nil {
		return "", err
	}
	return "token", nil
}

// verifiedCert is the stream's client certificate if the TLS handshake
// verified it against the server's ClientCAs, else nil.
func verifiedCert(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return ti.State.VerifiedChains[0][0]
}
