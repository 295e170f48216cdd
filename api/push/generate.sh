#!/usr/bin/env bash
# Regenerates the Go code of the push protocol from v1alpha1/push.proto.
# Installs protoc (Debian's protobuf-compiler) and the Go plugins at pinned
# versions when missing. The generated files are committed.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v protoc >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq protobuf-compiler >/dev/null
fi
GOBIN=$(go env GOPATH)/bin
[ -x "$GOBIN/protoc-gen-go" ] || go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
[ -x "$GOBIN/protoc-gen-go-grpc" ] || go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0
PATH="$GOBIN:$PATH" protoc -I . \
  --go_out=. --go_opt=paths=source_relative \
  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
  v1alpha1/push.proto
