package translate

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"causeway.dev/causeway/internal/ir"
)

// Explanation is the effective resilience settings of one route on one
// virtual host, each with the resource and field it came from: what
// `causeway validate --explain` prints. It is computed from the IR alone
// (Route.Sources and Cluster.Sources), so the admin API's /config, which
// serves the same IR, carries the same answers.
type Explanation struct {
	Route   string // ir.Route.Name
	Origin  string // ir.Route.Origin
	Gateway string // "namespace/name"
	Domain  string
	// Settings of the route itself: retry, timeouts, fault injection,
	// session persistence.
	Settings []ExplainedSetting
	Backends []ExplainedBackend
}

// ExplainedBackend is one backend of a route and its cluster's settings.
type ExplainedBackend struct {
	Name     string // e.g. "Service/default/app:8080"
	Cluster  string
	Settings []ExplainedSetting
}

// ExplainedSetting is one effective value. Source is "default" when no
// resource set it (the value shown is then the translator's default, or
// the proxy applies the default documented on the ir type).
type ExplainedSetting struct {
	Key    string // e.g. "retry.attempts", "outlierDetection.consecutive5xx"
	Value  string
	Source string
}

// Explain lists, for every route of cfg in listener and precedence order,
// its effective resilience settings and their sources.
func Explain(cfg *ir.Config) []Explanation {
	clusters := map[string]*ir.Cluster{}
	for _, c := range cfg.Clusters {
		clusters[c.Name] = c
	}
	var out []Explanation
	for _, l := range cfg.Listeners {
		for _, vh := range l.VirtualHosts {
			for _, r := range vh.Routes {
				ex := Explanation{Route: r.Name, Origin: r.Origin, Gateway: vh.Gateway, Domain: vh.Domain}
				ex.Settings = explainObject(map[string]any{
					"retry": r.Retry, "fault": r.Fault, "timeouts": r.Timeouts, "sessionPersistence": r.SessionPersistence,
				}, r.Sources)
				for _, b := range r.Backends {
					eb := ExplainedBackend{Name: b.Name, Cluster: b.Cluster}
					if c := clusters[b.Cluster]; c != nil {
						eb.Settings = explainObject(map[string]any{
							"loadBalancer": c.LoadBalancer, "healthCheck": c.HealthCheck, "outlierDetection": c.Outlier,
							"circuitBreaker": c.CircuitBreaker, "connectTimeout": c.ConnectTimeout, "idleTimeout": c.IdleTimeout,
						}, c.Sources)
					}
					ex.Backends = append(ex.Backends, eb)
				}
				out = append(out, ex)
			}
		}
	}
	return out
}

// explainObject flattens the JSON form of fields into leaves, each with
// its source.
func explainObject(fields map[string]any, sources map[string]string) []ExplainedSetting {
	b, _ := json.Marshal(fields)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	var out []ExplainedSetting
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case nil:
			return
		case map[string]any:
			if len(v) == 0 {
				return
			}
			if prefix == "sessionPersistence" || strings.HasPrefix(prefix, "loadBalancer.hashOn") {
				break // small objects read best whole
			}
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, v[k])
			}
			return
		}
		if s, ok := v.(string); ok && s == "0s" {
			return // an unset duration
		}
		val, _ := json.Marshal(v)
		out = append(out, ExplainedSetting{Key: prefix, Value: string(val), Source: sourceOf(prefix, sources)})
	}
	walk("", m)
	return out
}

// sourceOf finds the source recorded for a leaf: under its own key, or
// the key of the one-of group or setting it belongs to.
func sourceOf(key string, sources map[string]string) string {
	if s := sources[key]; s != "" {
		return s
	}
	if s := sources[groupKey(key)]; s != "" {
		return s
	}
	return "default"
}

// groupKey maps IR leaves to the setting keys that fill them together.
func groupKey(k string) string {
	switch {
	case strings.HasPrefix(k, "healthCheck.http"), k == "healthCheck.tcp", strings.HasPrefix(k, "healthCheck.grpc"):
		return "healthCheck.kind"
	case k == "fault.abortStatus", k == "fault.abortGRPCStatus", k == "fault.abortPercent":
		return "fault.abort"
	case k == "fault.delayPercent":
		return "fault.delay"
	case k == "fault.header", k == "fault.headerValue":
		return "fault.headerMatch"
	}
	return ""
}

// String renders an explanation as indented text.
func (e Explanation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "route %s\n  from %s\n  on Gateway %s, host %s\n", e.Route, e.Origin, e.Gateway, e.Domain)
	writeSettings(&b, "  ", e.Settings)
	for _, be := range e.Backends {
		fmt.Fprintf(&b, "  backend %s (cluster %s)\n", be.Name, be.Cluster)
		writeSettings(&b, "    ", be.Settings)
	}
	return b.String()
}

func writeSettings(b *strings.Builder, indent string, ss []ExplainedSetting) {
	if len(ss) == 0 {
		fmt.Fprintf(b, "%s(no resilience settings: defaults)\n", indent)
		return
	}
	w := 0
	for _, s := range ss {
		w = max(w, len(s.Key)+len(s.Value)+3)
	}
	for _, s := range ss {
		kv := s.Key + " = " + s.Value
		fmt.Fprintf(b, "%s%-*s  ← %s\n", indent, w, kv, s.Source)
	}
}
