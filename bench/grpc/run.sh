#!/usr/bin/env bash
# gRPC unary calls per second through Causeway vs. direct, grpc-go client
# and server (bench/grpc/main.go), each in its own process, Causeway built
# from this repository and run as `causeway gateway --config DIR` with a
# GRPCRoute (h2c to the server, connections kept alive). Rounds alternate
# direct and through Causeway so both see the same machine load.
#
# Usage: bench/grpc/run.sh [--rounds N] [--duration S] [--conc "1 2 8"] [--profile FILE]
#   --profile FILE: also take a 5 s CPU profile of the gateway under load
#                   (admin /debug/pprof/profile) and save it to FILE.
# Causeway is the release build (./build.sh); CAUSEWAY_BIN=path uses a
# prebuilt binary instead.
# Output: one line per round, then a summary table (medians).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=3 DURATION=5 CONC="2 8" PROFILE=""
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --conc) CONC=$2; shift 2 ;;
    --profile) PROFILE=$2; shift 2 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done
source bench/lib.sh
bench_setup grpc

SRV=$(free_port) GW=$(free_port) ADMIN=$(free_port)
"$OUT/grpcbench" server -listen "127.0.0.1:$SRV" & PIDS+=($!); SRV_PID=$!
mkdir -p "$OUT/config"
cat > "$OUT/config/all.yaml" <<EOF
$(gateway_yaml gw)
  listeners: [{name: grpc, protocol: HTTP, port: $GW}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: bench}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{method: {service: grpc.testing.TestService}}]
    backendRefs: [{name: bench, port: 50051}]
---
apiVersion: v1
kind: Service
metadata: {name: bench}
spec: {ports: [{name: grpc, port: 50051}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: bench-1, labels: {kubernetes.io/service-name: bench}}
addressType: IPv4
ports: [{name: grpc, port: $SRV}]
endpoints: [{addresses: [127.0.0.1]}]
EOF
start_gateway

bench_header
echo "round,conc,mode,calls_per_s,p50_ms,p99_ms,errors,gateway_cpu_ms_per_1k,server_cpu_ms_per_1k,client_cpu_ms_per_1k,load1" > "$OUT/raw.csv"
run() { # conc mode target
  local g0 s0 g1 s1 line calls
  g0=$(cpu_ticks "$GW_PID"); s0=$(cpu_ticks "$SRV_PID")
  line=$("$OUT/grpcbench" load -target "$3" -c "$1" -duration "${DURATION}s")
  g1=$(cpu_ticks "$GW_PID"); s1=$(cpu_ticks "$SRV_PID")
  calls=$(sed 's/.*calls=\([0-9]*\) .*/\1/' <<<"$line")
  awk -v r="$r" -v c="$1" -v m="$2" -v l="$line" -v n="$calls" -v gd=$((g1-g0)) -v sd=$((s1-s0)) -v hz="$HZ" -v load="$(load1)" 'BEGIN{
    split(l, kv, " "); for (i in kv) { split(kv[i], p, "="); v[p[1]] = p[2] }
    g = (m == "direct") ? "-" : sprintf("%.1f", gd*1000/hz/n*1000)
    printf "%s,%s,%s,%s,%s,%s,%s,%s,%.1f,%.1f,%s\n", r, c, m, v["calls_per_s"], v["p50_ms"], v["p99_ms"], v["errors"], g, sd*1000/hz/n*1000, v["client_cpu_s"]*1000/n*1000, load }' | tee -a "$OUT/raw.csv"
}
"$OUT/grpcbench" load -target "127.0.0.1:$GW" -c 2 -duration 1s >/dev/null # warm up
for r in $(seq "$ROUNDS"); do
  for c in $CONC; do
    run "$c" direct "127.0.0.1:$SRV"
    run "$c" causeway "127.0.0.1:$GW"
  done
done
if [ -n "$PROFILE" ]; then
  "$OUT/grpcbench" load -target "127.0.0.1:$GW" -c 2 -duration 7s >/dev/null &
  sleep 1
  curl -fs -o "$PROFILE" "http://127.0.0.1:$ADMIN/debug/pprof/profile?seconds=5"
  wait $!
  cp "$OUT/causeway" "$PROFILE.bin"
  echo "profile: $PROFILE (go tool pprof -top $PROFILE.bin $PROFILE)"
fi
echo
echo "| callers | direct calls/s | Causeway calls/s | ratio | Causeway p50 ms | direct p50 ms | gateway CPU-ms/1k | server CPU-ms/1k (direct / via) | client CPU-ms/1k (direct / via) |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for c in $CONC; do
  med() { median "$OUT/raw.csv" "^[0-9]*,$c,$1," "$2"; }
  d=$(med direct 4) v=$(med causeway 4)
  echo "| $c | $d | $v | $(ratio "$v" "$d") | $(med causeway 5) | $(med direct 5) | $(med causeway 8) | $(med direct 9) / $(med causeway 9) | $(med direct 10) / $(med causeway 10) |"
done
rm -rf "$OUT/config"
