#!/usr/bin/env bash
# The whole test suite, runnable on a fresh machine: installs what the tests
# need (Debian packages, Go tools), checks formatting and static analysis,
# then runs every Go test (unit, end-to-end on real sockets, fuzz seeds),
# then Kubernetes mode: the unmodified Gateway API conformance suite and the
# kubeapi integration tests on a real kube-apiserver. `.ci/run` calls
# exactly this.
#
# The Kubernetes part needs root (the test bed's pod network namespaces) and
# builds kube-apiserver, etcd and the suite once into /tmp/k8sbed/bin: 20-40
# minutes cold, seconds warm. CAUSEWAY_SKIP_K8S=1 leaves it out of a local
# run; CI always runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real clients and servers the tests start themselves.
pkgs=()
command -v curl >/dev/null || pkgs+=(curl)
command -v redis-server >/dev/null || pkgs+=(redis-server)
command -v redis-cli >/dev/null || pkgs+=(redis-tools)
command -v ip >/dev/null || pkgs+=(iproute2)      # the k8s test bed's pod network
command -v openssl >/dev/null || pkgs+=(openssl)  # its certificates
if ((${#pkgs[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
GOBIN=$(go env GOPATH)/bin
[ -x "$GOBIN/staticcheck" ] || go install honnef.co/go/tools/cmd/staticcheck@v0.8.2

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "gofmt needed:"; echo "$bad"; exit 1; fi
echo "== go vet"
go vet ./...
go vet -tags kubeapi ./internal/... ./test/...
echo "== staticcheck"
"$GOBIN/staticcheck" ./...
"$GOBIN/staticcheck" -tags kubeapi ./internal/... ./test/...
echo "== go test"
go test -count=1 -timeout 30m "$@" ./...
echo "== go test -race (the concurrent data-plane and control-plane packages)"
go test -race -count=1 -timeout 20m "$@" ./internal/proxy/ ./internal/upstream/ ./internal/l4/ ./internal/h1/ \
  ./internal/push/... ./internal/agent/ ./internal/provider/... ./internal/gateway/ ./internal/telemetry/

if [ "${CAUSEWAY_SKIP_K8S:-0}" = 1 ]; then
  echo "== Kubernetes: left out (CAUSEWAY_SKIP_K8S=1)"
  exit 0
fi
echo "== Gateway API conformance (test/conformance/run.sh)"
test/conformance/run.sh
echo "== go test -tags kubeapi (own kube-apiserver per test)"
KUBE_ASSETS="${BED:-/tmp/k8sbed}/bin" go test -count=1 -timeout 20m -tags kubeapi ./internal/provider/kube/ ./internal/provision/ ./test/controlplane/ "$@"
