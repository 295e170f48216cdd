package translate

import (
	"strings"
	"testing"
)

// TestExplain checks that the explanation names, for each effective
// setting, the policy field that won (testdata/btp-precedence.in.yaml).
func TestExplain(t *testing.T) {
	cfg, _ := translateFile(t, "testdata/btp-precedence.in.yaml")
	var own Explanation
	for _, e := range Explain(cfg) {
		if e.Route == "httproute/default/tuned/rule/1/match/0" {
			own = e
		}
	}
	if own.Route == "" {
		t.Fatal("route not explained")
	}
	want := map[string]string{
		"retry.attempts":      "HTTPRoute/default/tuned spec.rules[1].retry.attempts",
		"retry.on":            "BackendTrafficPolicy/default/route spec.retry.retryOn",
		"retry.perTryTimeout": "BackendTrafficPolicy/default/gateway-wide spec.retry.perTryTimeout",
		"retry.budgetPercent": "default",
		"timeouts.request":    "HTTPRoute/default/tuned spec.rules[1].timeouts.request",
	}
	got := map[string]string{}
	for _, s := range own.Settings {
		got[s.Key] = s.Source
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s from %q, want %q", k, got[k], v)
		}
	}
	if len(own.Backends) != 1 {
		t.Fatalf("backends %+v", own.Backends)
	}
	cl := map[string]string{}
	for _, s := range own.Backends[0].Settings {
		cl[s.Key] = s.Value + " " + s.Source
	}
	for k, v := range map[string]string{
		"outlierDetection.consecutive5xx":           "2 BackendTrafficPolicy/default/service spec.outlierDetection.consecutive5xx",
		"outlierDetection.consecutiveGatewayErrors": "3 BackendTrafficPolicy/default/route spec.outlierDetection.consecutiveGatewayErrors",
		"circuitBreaker.maxRequests":                "100 BackendTrafficPolicy/default/route spec.circuitBreaker.maxRequests",
	} {
		if cl[k] != v {
			t.Errorf("cluster %s = %q, want %q", k, cl[k], v)
		}
	}
	if s := own.String(); !strings.Contains(s, "retry.attempts = 5") || !strings.Contains(s, "← HTTPRoute/default/tuned spec.rules[1].retry.attempts") {
		t.Errorf("text form:\n%s", s)
	}
}
