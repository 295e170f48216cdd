//go:build kubeapi

// Integration tests against a real etcd and kube-apiserver started by
// test/kubeapi on free loopback ports. Run with:
//
//	KUBE_ASSETS=/tmp/k8sbed/bin go test -tags kubeapi ./internal/provision/
package provision

import (
	"testing"

	"k8s.io/client-go/rest"

	"causeway.dev/causeway/test/kubeapi"
)

// startAPIServer runs etcd and kube-apiserver (no controller manager:
// nothing garbage-collects) with the experimental Gateway API CRDs.
func startAPIServer(t *testing.T) *rest.Config {
	t.Helper()
	return kubeapi.Start(t, kubeapi.Options{CRDs: kubeapi.GatewayAPICRDs(t)}).Config
}

var waitFor = kubeapi.WaitFor
