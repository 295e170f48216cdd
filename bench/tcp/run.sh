#!/usr/bin/env bash
# TCP throughput over loopback: direct, through Causeway (a TCPRoute on a
# TCP listener of `causeway gateway --config DIR`) and through HAProxy in
# TCP mode, to the same sink (bench/tcp/main.go), in the same run. Each
# run sends a byte budget over a few parallel streams and stops at a time
# limit, whichever comes first; rounds alternate the three targets. Also
# reports each proxy's CPU-seconds per GiB and, with --strace, the
# syscalls Causeway used (splice or read/write).
#
# Usage: bench/tcp/run.sh [--rounds N] [--bytes 3GiB] [--duration S] [--streams N] [--strace]
# Causeway is the release build (./build.sh); CAUSEWAY_BIN=path uses a
# prebuilt binary instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=3 BYTES=3GiB DURATION=8 STREAMS=4 STRACE=0
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --bytes) BYTES=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --streams) STREAMS=$2; shift 2 ;;
    --strace) STRACE=1; shift ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done
source bench/lib.sh
need_haproxy
bench_setup tcp

SINK=$(free_port) CW=$(free_port) HA=$(free_port) ADMIN=$(free_port)
"$OUT/tcpbench" sink -listen "127.0.0.1:$SINK" & PIDS+=($!); SINK_PID=$!

mkdir -p "$OUT/config"
cat > "$OUT/config/all.yaml" <<EOF
$(gateway_yaml gw)
  listeners: [{name: tcp, protocol: TCP, port: $CW}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: sink}
spec:
  parentRefs: [{name: gw, sectionName: tcp}]
  rules: [{backendRefs: [{group: causeway.dev, kind: Backend, name: sink}]}]
---
apiVersion: causeway.dev/v1alpha1
kind: Backend
metadata: {name: sink}
spec:
  endpoints: [{ip: {address: 127.0.0.1, port: $SINK}}]
EOF
# HAProxy in TCP mode, one thread per core, splice(2) forced both ways
# (splice-auto did not splice on loopback here: strace showed recvfrom/sendto).
cat > "$OUT/haproxy.cfg" <<EOF
global
  nbthread $(nproc)
  maxconn 1000
defaults
  mode tcp
  option splice-request
  option splice-response
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:$HA
  default_backend be
backend be
  server s1 127.0.0.1:$SINK
EOF
haproxy -db -f "$OUT/haproxy.cfg" & PIDS+=($!); HA_PID=$!
start_gateway; CW_PID=$GW_PID

bench_header "$(haproxy -v | head -1)"
echo "round,target,gib_per_s,bytes,seconds,proxy_cpu_s_per_gib,sink_cpu_s_per_gib,client_cpu_s_per_gib,load1" > "$OUT/raw.csv"
run() { # name port pid
  local p0 s0 p1 s1 line
  p0=0; [ "$3" != - ] && p0=$(cpu_ticks "$3"); s0=$(cpu_ticks "$SINK_PID")
  line=$("$OUT/tcpbench" send -target "127.0.0.1:$2" -streams "$STREAMS" -bytes "$BYTES" -duration "${DURATION}s")
  p1=0; [ "$3" != - ] && p1=$(cpu_ticks "$3"); s1=$(cpu_ticks "$SINK_PID")
  awk -v r="$r" -v n="$1" -v l="$line" -v pd=$((p1-p0)) -v sd=$((s1-s0)) -v hz="$HZ" -v load="$(load1)" 'BEGIN{
    split(l, kv, " "); for (i in kv) { split(kv[i], p, "="); v[p[1]] = p[2] }
    gib = v["bytes"] / 2^30
    pc = (n == "direct") ? "-" : sprintf("%.3f", pd/hz/gib)
    printf "%s,%s,%s,%s,%s,%s,%.3f,%.3f,%s\n", r, n, v["gib_per_s"], v["bytes"], v["seconds"], pc, sd/hz/gib, v["client_cpu_s"]/gib, load }' | tee -a "$OUT/raw.csv"
}
"$OUT/tcpbench" send -target "127.0.0.1:$CW" -streams 1 -bytes 64MiB -duration 2s >/dev/null # warm up
if [ "$STRACE" = 1 ] && command -v strace >/dev/null; then
  timeout 20 strace -f -c -e trace=splice,read,write,pipe2 -p "$CW_PID" -o "$OUT/strace.txt" & ST=$!
  sleep 1
  "$OUT/tcpbench" send -target "127.0.0.1:$CW" -streams 2 -bytes 256MiB -duration 5s >/dev/null
  kill -INT "$ST" 2>/dev/null || true; wait "$ST" 2>/dev/null || true
  echo "syscalls of causeway while it forwarded 256 MiB (strace -c):"; grep -E "calls|splice|read|write|pipe2" "$OUT/strace.txt" || true
fi
for r in $(seq "$ROUNDS"); do
  run direct "$SINK" -
  run causeway "$CW" "$CW_PID"
  run haproxy "$HA" "$HA_PID"
done
echo
echo "| target | GiB/s (median) | ratio vs direct | proxy CPU-s per GiB | sink CPU-s per GiB | sender CPU-s per GiB |"
echo "|---|---:|---:|---:|---:|---:|"
med() { median "$OUT/raw.csv" "^[0-9]*,$1," "$2"; }
D=$(med direct 3)
for n in direct causeway haproxy; do
  echo "| $n | $(med $n 3) | $(ratio "$(med $n 3)" "$D") | $(med $n 6) | $(med $n 7) | $(med $n 8) |"
done
