#!/usr/bin/env bash
# Measures Causeway beside nginx, HAProxy, Caddy and Go's httputil proxy in
# one run of ../shared/bench/anchors.sh, then the router's Go benchmarks.
# Usage: bench/run.sh [anchors.sh flags...], e.g. bench/run.sh --rounds 3 --tests h1
# Results: the tables printed at the end; copy the figures to bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ANCHORS=${ANCHORS:-/work/shared/bench/anchors.sh}
[ -x "$ANCHORS" ] || ANCHORS=../shared/bench/anchors.sh
mkdir -p bin
./build.sh bin/causeway
"$ANCHORS" --extra "causeway=CAUSEWAY_BIN=$PWD/bin/causeway $PWD/bench/causeway-anchor.sh" "$@"
echo
echo "== router (internal/route) =="
go test -run '^$' -bench 'BenchmarkMatch' -benchmem ./internal/route/
