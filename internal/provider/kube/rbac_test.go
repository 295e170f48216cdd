//go:build kubeapi

package kube

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"causeway.dev/causeway/deploy"
	"causeway.dev/causeway/internal/leader"
	"causeway.dev/causeway/internal/resource"
	"causeway.dev/causeway/internal/translate"
	"causeway.dev/causeway/test/kubeapi"
)

// resources maps the kinds the test applies to their resources; apply
// skips others (the Gateway API's ValidatingAdmissionPolicy).
var resources = map[string]schema.GroupVersionResource{
	"Namespace":                {Version: "v1", Resource: "namespaces"},
	"ServiceAccount":           {Version: "v1", Resource: "serviceaccounts"},
	"Service":                  {Version: "v1", Resource: "services"},
	"ClusterRole":              {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"},
	"ClusterRoleBinding":       {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"},
	"Role":                     {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
	"RoleBinding":              {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
	"Deployment":               {Group: "apps", Version: "v1", Resource: "deployments"},
	"CustomResourceDefinition": kubeapi.CRDGVR,
	"Gateway":                  {Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"},
	"HTTPRoute":                {Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"},
}

// apply creates the objects of a YAML stream whose kinds are in resources
// and returns the names of the CRDs among them.
func apply(t *testing.T, dyn dynamic.Interface, stream []byte) (crds []string) {
	t.Helper()
	for _, doc := range strings.Split("\n"+string(stream), "\n---") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		gvr, ok := resources[u.GetKind()]
		if u.Object == nil || !ok {
			continue
		}
		var ri dynamic.ResourceInterface = dyn.Resource(gvr)
		if ns := u.GetNamespace(); ns != "" {
			ri = dyn.Resource(gvr).Namespace(ns)
		}
		if _, err := ri.Create(context.Background(), u, createOpts); err != nil {
			t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		if u.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, u.GetName())
		}
	}
	return crds
}

// TestRBACLeastPrivilege installs deploy/install.yaml (the chart rendered)
// and the Gateway API CRDs into an RBAC-enforcing apiserver, then runs the
// provider, the status writer and the elector as the chart's
// ServiceAccount, with a token issued for it: the Gateway and HTTPRoute
// get their status, the Lease is taken, and the audit log shows no request
// of that identity forbidden. A request outside the ClusterRole is
// forbidden, so RBAC is really in force.
func TestRBACLeastPrivilege(t *testing.T) {
	crdDir := os.Getenv("GATEWAY_API_CRDS")
	if crdDir == "" {
		crdDir = "/tmp/k8sbed/bin/crds-gateway-api-v1.6.3/experimental"
	}
	files, _ := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if len(files) == 0 {
		t.Fatalf("no Gateway API CRDs in %s (set GATEWAY_API_CRDS)", crdDir)
	}
	srv := kubeapi.Start(t, kubeapi.Options{RBAC: true, Audit: true, CRDs: files})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	admin := dynamic.NewForConfigOrDie(srv.Config)
	kubeapi.WaitEstablished(t, admin, apply(t, admin, deploy.Install))
	checkCRDValidation(t, admin)

	// A token for the chart's ServiceAccount, as a pod would get one.
	const ns, sa = "causeway-system", "causeway"
	tr := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
		"metadata": map[string]any{"name": sa, "namespace": ns},
		"spec":     map[string]any{"expirationSeconds": int64(3600)}}}
	res, err := admin.Resource(resources["ServiceAccount"]).Namespace(ns).Create(ctx, tr, createOpts, "token")
	if err != nil {
		t.Fatalf("TokenRequest: %v", err)
	}
	token, _, _ := unstructured.NestedString(res.Object, "status", "token")
	if token == "" {
		t.Fatal("TokenRequest returned no token")
	}
	const agent = "causeway-rbac-test"
	var forbidden atomic.Int32
	saCfg := &rest.Config{Host: srv.Config.Host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS: 200, Burst: 400, UserAgent: agent}
	saCfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if err == nil && resp.StatusCode == http.StatusForbidden {
				forbidden.Add(1)
				t.Logf("forbidden: %s %s", req.Method, req.URL.Path)
			}
			return resp, err
		})
	}

	// What `causeway controller` does as its ServiceAccount.
	dyn := dynamic.NewForConfigOrDie(saCfg)
	gcGVR := schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gatewayclasses"}
	_, err = dyn.Resource(gcGVR).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": map[string]any{"name": "causeway"},
		"spec": map[string]any{"controllerName": translate.ControllerName}}}, createOpts)
	if err != nil {
		t.Fatalf("creating the GatewayClass as the ServiceAccount: %v", err)
	}
	prov, err := New(Options{Config: saCfg})
	if err != nil {
		t.Fatal(err)
	}
	sw, err := NewStatusWriter(StatusOptions{Config: saCfg})
	if err != nil {
		t.Fatal(err)
	}
	el, err := leader.New(leader.Config{Config: saCfg, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	addrs := func(*gwv1.Gateway) []string { return []string{"127.0.2.9"} }
	go func() {
		_ = prov.Run(ctx, func(s *resource.Snapshot) {
			_, rep := translate.Translate(s, translate.Options{Addresses: addrs})
			sw.Update(s, rep, addrs)
		})
	}()
	elDone := make(chan error, 1)
	go func() { elDone <- el.Run(ctx, func(ctx context.Context) { _ = sw.Run(ctx) }) }()

	// What users create, as admin.
	docs := `
apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: default}
spec:
  gatewayClassName: causeway
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: default}
spec:
  parentRefs: [{name: edge}]
  rules: [{backendRefs: [{name: app, port: 8080}]}]
`
	apply(t, admin, []byte(docs))

	conds := func(gvr schema.GroupVersionResource, ns, name string, path ...string) func() error {
		return func() error {
			u, err := admin.Resource(gvr).Namespace(ns).Get(ctx, name, getOpts)
			if err != nil {
				return err
			}
			cs, _, _ := unstructured.NestedSlice(u.Object, path...)
			for _, c := range cs {
				if m, _ := c.(map[string]any); m["type"] == "Accepted" && m["status"] == "True" {
					return nil
				}
			}
			return fmt.Errorf("%s %s: not Accepted: %v", gvr.Resource, name, cs)
		}
	}
	waitFor(t, "GatewayClass status", 30*time.Second, conds(gcGVR, "", "causeway", "status", "conditions"))
	waitFor(t, "Gateway status", 30*time.Second, conds(resources["Gateway"], "default", "edge", "status", "conditions"))
	waitFor(t, "HTTPRoute status", 30*time.Second, func() error {
		u, err := admin.Resource(resources["HTTPRoute"]).Namespace("default").Get(ctx, "app", getOpts)
		if err != nil {
			return err
		}
		parents, _, _ := unstructured.NestedSlice(u.Object, "status", "parents")
		if len(parents) != 1 {
			return fmt.Errorf("parents %v", parents)
		}
		cs, _, _ := unstructured.NestedSlice(parents[0].(map[string]any), "conditions")
		for _, c := range cs {
			if m, _ := c.(map[string]any); m["type"] == "Accepted" && m["status"] == "True" {
				return nil
			}
		}
		return fmt.Errorf("route not Accepted: %v", cs)
	})
	if !el.IsLeader() {
		t.Error("the elector does not lead")
	}
	cancel()
	if err := <-elDone; err != nil {
		t.Errorf("releasing the Lease as the ServiceAccount: %v", err)
	}

	// RBAC is in force: deleting a Gateway is outside the ClusterRole.
	probe := rest.CopyConfig(saCfg)
	probe.WrapTransport, probe.UserAgent = nil, "rbac-probe"
	err = dynamic.NewForConfigOrDie(probe).Resource(resources["Gateway"]).Namespace("default").Delete(context.Background(), "edge", metav1.DeleteOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("deleting a Gateway as the ServiceAccount: %v; want forbidden", err)
	}

	if n := forbidden.Load(); n != 0 {
		t.Errorf("%d requests of the controller's components were forbidden", n)
	}
	user := "system:serviceaccount:" + ns + ":" + sa
	seen, denied, probeDenied := auditCounts(t, srv.AuditLog, user, agent)
	if seen < 10 || denied != 0 || probeDenied != 1 {
		t.Errorf("audit log: %d requests of %s, %d forbidden, %d probe forbidden; want many, 0 and 1", seen, user, denied, probeDenied)
	}
}

// auditCounts reads the audit log: the requests of user made with
// userAgent, those answered 403, and the 403s of other agents.
func auditCounts(t *testing.T, file, user, userAgent string) (seen, denied, otherDenied int) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev struct {
			Stage     string `json:"stage"`
			UserAgent string `json:"userAgent"`
			User      struct {
				Username string `json:"username"`
			} `json:"user"`
			ResponseStatus struct {
				Code int `json:"code"`
			} `json:"responseStatus"`
			RequestURI string `json:"requestURI"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.User.Username != user || ev.Stage != "ResponseComplete" {
			continue
		}
		if !strings.HasPrefix(ev.UserAgent, userAgent) {
			if ev.ResponseStatus.Code == http.StatusForbidden {
				otherDenied++
			}
			continue
		}
		seen++
		if ev.ResponseStatus.Code == http.StatusForbidden {
			denied++
			t.Logf("audit: forbidden %s", ev.RequestURI)
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		t.Fatal(err)
	}
	return seen, denied, otherDenied
}

// checkCRDValidation creates policies against Causeway's CRDs as the
// apiserver validates them: the OpenAPI and CEL rules generated from
// api/v1alpha1's markers refuse what the translator would refuse.
func checkCRDValidation(t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	btp := schema.GroupVersionResource{Group: "causeway.dev", Version: "v1alpha1", Resource: "backendtrafficpolicies"}
	create := func(name, spec string) error {
		u := &unstructured.Unstructured{}
		doc := "apiVersion: causeway.dev/v1alpha1\nkind: BackendTrafficPolicy\nmetadata: {name: " + name + ", namespace: default}\nspec: " + spec
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		_, err := dyn.Resource(btp).Namespace("default").Create(context.Background(), u, createOpts)
		return err
	}
	if err := create("ok", `{targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: app}], retry: {numAttempts: 3, perTryTimeout: 500ms}, loadBalancer: {type: RingHash, consistentHash: {header: x-user}}}`); err != nil {
		t.Fatalf("valid BackendTrafficPolicy refused: %v", err)
	}
	for _, c := range []struct{ spec, want string }{
		{`{targetRefs: [{group: "", kind: Secret, name: s}]}`, "kind"},
		{`{targetRefs: [{group: "", kind: Gateway, name: g}]}`, "a target is a Gateway"},
		{`{targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: g, sectionName: http}]}`, "sectionName is for Service targets only"},
		{`{targetRefs: [{group: "", kind: Service, name: s}], loadBalancer: {type: Maglev}}`, "consistentHash is required"},
		{`{targetRefs: [{group: "", kind: Service, name: s}], outlierDetection: {maxEjectionPercent: 101}}`, "maxEjectionPercent"},
		{`{targetRefs: [{group: "", kind: Service, name: s}], timeouts: {connect: soon}}`, "connect"},
		{`{targetRefs: []}`, "targetRefs"},
	} {
		err := create("bad", c.spec)
		if err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("spec %s: %v; want invalid, mentioning %q", c.spec, err, c.want)
		}
	}
}
