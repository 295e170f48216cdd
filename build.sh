#!/usr/bin/env sh
# Builds the release binary: ./build.sh [output path, default ./causeway]
#
# CGO_ENABLED=0  a static binary (Go's own DNS resolver): no libc/ld.so
#                mapped, 1.3 MiB less idle RSS, runs on any Linux.
# grpcnotrace    drops golang.org/x/net/trace (and with it html/template
#                and expvar) from grpc-go: 2.6 MiB less idle RSS; Causeway
#                never enabled grpc tracing.
# -s -w          no symbol table or DWARF: a smaller file (stack traces
#                keep function names and lines, from pclntab).
#
# test/testbin builds the binary the end-to-end tests run the same way.
set -eu
cd "$(dirname "$0")"
CGO_ENABLED=0 exec go build -trimpath -tags grpcnotrace -ldflags='-s -w' -o "${1:-causeway}" ./cmd/causeway
