#!/usr/bin/env bash
# The whole test suite, runnable on a fresh machine: installs what the tests
# need (Debian packages, Go tools), checks formatting and static analysis,
# then runs every Go test (unit, end-to-end on real sockets, fuzz seeds).
# `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real clients and servers the tests start themselves.
pkgs=()
command -v curl >/dev/null || pkgs+=(curl)
command -v redis-server >/dev/null || pkgs+=(redis-server)
command -v redis-cli >/dev/null || pkgs+=(redis-tools)
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
echo "== staticcheck"
"$GOBIN/staticcheck" ./...
echo "== go test"
go test -count=1 -timeout 30m "$@" ./...
