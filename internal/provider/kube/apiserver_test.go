//go:build kubeapi

// Integration tests against a real etcd and kube-apiserver, started by
// test/kubeapi on free loopback ports from the binaries of
// ../shared/k8s-testbed (build-k8s-bins.sh). Run with:
//
//	KUBE_ASSETS=/tmp/k8sbed/bin go test -tags kubeapi ./internal/provider/kube/
package kube

import (
	"testing"

	"k8s.io/client-go/rest"

	"causeway.dev/causeway/test/kubeapi"
)

// apiServer is a running etcd + kube-apiserver pair with the experimental
// Gateway API CRDs installed.
type apiServer struct {
	cfg *rest.Config
}

func startAPIServer(t *testing.T) *apiServer {
	t.Helper()
	srv := kubeapi.Start(t, kubeapi.Options{CRDs: kubeapi.GatewayAPICRDs(t)})
	return &apiServer{cfg: srv.Config}
}

var waitFor = kubeapi.WaitFor
