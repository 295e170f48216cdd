package translate

import (
	"fmt"
	"sort"
	"strings"

	"causeway.dev/causeway/api/v1alpha1"
	"causeway.dev/causeway/internal/ir"
)

// Weighted locality distribution (loadBalancer.locality). Its one setting,
// the list of rules, counts as one field for precedence: the most specific
// policy that sets distribute (even to an empty list, which restores
// failover) gives all the rules.

const keyDistribute = "loadBalancer.locality.distribute"

// compileBackendPolicy validates a policy and turns it into settings:
// compilePolicy's, then locality distribution's.
func compileBackendPolicy(p *v1alpha1.BackendTrafficPolicy) (*layer, *fieldErr) {
	l, err := compilePolicy(p)
	if err != nil {
		return nil, err
	}
	lbs := p.Spec.LoadBalancer
	if lbs == nil || lbs.Locality == nil || lbs.Locality.Distribute == nil {
		return l, nil
	}
	const f = "spec.loadBalancer.locality.distribute"
	rules, err := compileDistribute(lbs.Locality.Distribute, f)
	if err != nil {
		return nil, err
	}
	l.settings = append(l.settings, setting{
		key:     keyDistribute,
		source:  kindBTP + "/" + p.Namespace + "/" + p.Name + " " + f,
		cluster: func(c *ir.Cluster) { lb(c).LocalityDistribute = rules },
	})
	return l, nil
}

// compileDistribute validates distribute rules; the error names the field.
// The IR form lists each rule's localities in name order.
func compileDistribute(ds []v1alpha1.LocalityDistribution, field string) ([]ir.LocalityDistribution, *fieldErr) {
	out := make([]ir.LocalityDistribution, 0, len(ds))
	seen := map[string]int{}
	for i, d := range ds {
		f := fmt.Sprintf("%s[%d]", field, i)
		from, err := normLocality(d.From, f+".from")
		if err != nil {
			return nil, err
		}
		if j, dup := seen[from]; dup {
			return nil, unsupported(f+".from", "from %q is already the from of distribute[%d]; each rule needs its own", d.From, j)
		}
		seen[from] = i
		if len(d.To) == 0 {
			return nil, unsupported(f+".to", "to needs at least one locality")
		}
		keys := make([]string, 0, len(d.To))
		for k := range d.To {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		rule := ir.LocalityDistribution{From: from}
		sum := 0
		norm := map[string]string{}
		for _, k := range keys {
			kf := fmt.Sprintf("%s.to[%q]", f, k)
			loc, err := normLocality(k, kf)
			if err != nil {
				return nil, err
			}
			if other, dup := norm[loc]; dup {
				return nil, unsupported(kf, "%q and %q name the same locality", other, k)
			}
			norm[loc] = k
			w := d.To[k]
			if w < 0 || w > 100 {
				return nil, unsupported(kf, "weight %d is out of range 0-100", w)
			}
			sum += int(w)
			rule.To = append(rule.To, ir.LocalityWeight{Locality: loc, Weight: int(w)})
		}
		if sum != 100 {
			return nil, unsupported(f+".to", "weights sum to %d; they are percentages and must sum to 100", sum)
		}
		sort.Slice(rule.To, func(a, b int) bool { return rule.To[a].Locality < rule.To[b].Locality })
		out = append(out, rule)
	}
	return out, nil
}

// normLocality checks a "region/zone" pattern and returns its canonical
// form: "*" alone becomes "*/*".
func normLocality(s, field string) (string, *fieldErr) {
	if s == "*" {
		return "*/*", nil
	}
	region, zone, ok := strings.Cut(s, "/")
	if !ok || region == "" || zone == "" || strings.Contains(zone, "/") ||
		strings.ContainsAny(s, " \t\r\n") {
		return "", unsupported(field, "locality %q is malformed; write region/zone, with * for any region or zone (\"eu-west/*\", \"*/zone-a\"), or * for anywhere", s)
	}
	return s, nil
}
