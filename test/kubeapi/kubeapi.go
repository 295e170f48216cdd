// Package kubeapi runs a real etcd and kube-apiserver for the integration
// tests of the Kubernetes path (internal/provider/kube, internal/provision;
// build tag kubeapi). Each Start uses its own temporary directory and free
// loopback ports, from the binaries in $KUBE_ASSETS (default
// /tmp/k8sbed/bin, built by k8s-testbed/build-k8s-bins.sh). There is no
// controller manager: nothing garbage-collects.
//
// It talks to the apiserver with the dynamic client only, as the binary
// does (test/arch keeps typed clientsets out of cmd/causeway).
package kubeapi

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"causeway.dev/causeway/test/testbin"
)

// CRDGVR is the resource of CustomResourceDefinitions.
var CRDGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// serviceAccountIssuer is the issuer (and, with RBAC, the audience) of the
// apiserver's ServiceAccount tokens.
const serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// Options says how the apiserver differs from the default one, which
// allows every request and has no CRDs.
type Options struct {
	// RBAC authorizes with RBAC and accepts TokenRequest tokens for the
	// issuer's audience; false: AlwaysAllow.
	RBAC bool
	// Audit writes every request's metadata to Server.AuditLog, blocking
	// (an event is in the file before its response is sent); false: none.
	Audit bool
	// CRDs are YAML files whose CustomResourceDefinitions Start creates
	// and waits for; nil: none. See GatewayAPICRDs.
	CRDs []string
}

// Server is a running etcd + kube-apiserver pair, stopped at the test's
// cleanup.
type Server struct {
	// Config is an admin's (system:masters), by a static token.
	Config *rest.Config
	// AuditLog is the audit log's path; empty without Options.Audit.
	AuditLog string
}

// Start runs etcd and kube-apiserver, waits until the apiserver is ready
// and installs opts.CRDs.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	assets := os.Getenv("KUBE_ASSETS")
	if assets == "" {
		assets = "/tmp/k8sbed/bin"
	}
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			t.Fatalf("%s not found in KUBE_ASSETS=%s (build it with k8s-testbed/build-k8s-bins.sh): %v", b, assets, err)
		}
	}
	dir := t.TempDir()
	port := func() int { return testbin.FreePort(t, "127.0.0.1") }
	url := func(port int) string { return fmt.Sprintf("http://127.0.0.1:%d", port) }
	etcdPort, peerPort, apiPort := port(), port(), port()
	startProcess(t, dir, filepath.Join(assets, "etcd"), "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", url(etcdPort), "--advertise-client-urls", url(etcdPort),
		"--listen-peer-urls", url(peerPort), "--initial-advertise-peer-urls", url(peerPort),
		"--initial-cluster", "default="+url(peerPort),
		"--listen-metrics-urls", url(port()),
		"--unsafe-no-fsync")

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	token := hex.EncodeToString(tok)
	args := []string{
		"--etcd-servers", url(etcdPort),
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", fmt.Sprint(apiPort),
		"--cert-dir", filepath.Join(dir, "serving"),
		"--token-auth-file", write("tokens.csv", []byte(token+",admin,admin,system:masters\n")),
		"--service-account-issuer", serviceAccountIssuer,
		"--service-account-key-file", write("sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
		"--service-account-signing-key-file", write("sa.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		"--service-cluster-ip-range", "10.96.0.0/16", "--endpoint-reconciler-type", "none",
		"--disable-admission-plugins", "ServiceAccount",
	}
	if opts.RBAC {
		args = append(args, "--authorization-mode", "RBAC", "--api-audiences", serviceAccountIssuer)
	} else {
		args = append(args, "--authorization-mode", "AlwaysAllow")
	}
	srv := &Server{}
	if opts.Audit {
		srv.AuditLog = filepath.Join(dir, "audit.log")
		policy := write("audit.yaml", []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n"))
		args = append(args, "--audit-policy-file", policy, "--audit-log-path", srv.AuditLog, "--audit-log-mode", "blocking")
	}
	startProcess(t, dir, filepath.Join(assets, "kube-apiserver"), args...)

	srv.Config = &rest.Config{Host: fmt.Sprintf("https://127.0.0.1:%d", apiPort), BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 200, Burst: 400}
	hc, err := rest.HTTPClientFor(srv.Config)
	if err != nil {
		t.Fatal(err)
	}
	WaitFor(t, "apiserver ready", 90*time.Second, func() error {
		resp, err := hc.Get(srv.Config.Host + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	})
	if len(opts.CRDs) > 0 {
		installCRDs(t, dynamic.NewForConfigOrDie(srv.Config), opts.CRDs)
	}
	return srv
}

// startProcess runs name with its output in dir/<name>.log and kills it at
// the test's cleanup.
func startProcess(t testing.TB, dir, name string, args ...string) {
	t.Helper()
	log, err := os.Create(filepath.Join(dir, filepath.Base(name)+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = log.Close()
	})
}

// WaitFor polls cond every 50ms until it holds, or fails the test with
// cond's last error when timeout has passed. Kubernetes is eventually
// consistent; there is nothing to block on instead.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not reached in %v: %v", what, timeout, err)
}

// GatewayAPICRDs returns the files of the experimental Gateway API CRDs of
// the module cache's sigs.k8s.io/gateway-api (go.mod's version).
func GatewayAPICRDs(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		t.Fatalf("locating gateway-api: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "config/crd/experimental/gateway.networking.k8s.io_*.yaml"))
	if len(files) == 0 {
		t.Fatal("no Gateway API CRDs found")
	}
	return files
}

// installCRDs creates the CustomResourceDefinitions of files (other kinds
// are skipped) and waits until they are established.
func installCRDs(t testing.TB, dyn dynamic.Interface, files []string) {
	t.Helper()
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---\n") {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil || u.GetKind() != "CustomResourceDefinition" {
				continue
			}
			if _, err := dyn.Resource(CRDGVR).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
				t.Fatalf("creating CRD %s: %v", u.GetName(), err)
			}
			names = append(names, u.GetName())
		}
	}
	WaitEstablished(t, dyn, names)
}

// WaitEstablished waits until the named CRDs are Established.
func WaitEstablished(t testing.TB, dyn dynamic.Interface, names []string) {
	t.Helper()
	WaitFor(t, "CRDs established", 60*time.Second, func() error {
		for _, n := range names {
			u, err := dyn.Resource(CRDGVR).Get(context.Background(), n, metav1.GetOptions{})
			if err != nil {
				return err
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			ok := false
			for _, c := range conds {
				if m, _ := c.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
					ok = true
				}
			}
			if !ok {
				return fmt.Errorf("%s not established", n)
			}
		}
		return nil
	})
}
