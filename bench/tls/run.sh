#!/usr/bin/env bash
# TLS handshakes per second at a Causeway HTTPS listener, ECDSA P-256 and
# RSA-2048 certificates, full handshakes and resumed ones (TLS 1.3 session
# tickets), beside HAProxy with the same certificates in the same run.
# Each connection is one handshake and one request the proxy answers
# itself (Causeway: 404, no route for the host; HAProxy: http-request
# return 404), read to the end so the session ticket arrives. Rounds
# alternate the proxies.
#
# Usage: bench/tls/run.sh [--rounds N] [--duration S] [--conc N]
# Causeway is the release build (./build.sh); CAUSEWAY_BIN=path uses a
# prebuilt binary instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=3 DURATION=4 CONC=4
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --conc) CONC=$2; shift 2 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done
source bench/lib.sh
need_haproxy
bench_setup tls

for k in ecdsa rsa; do
  if [ $k = ecdsa ]; then opt=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1); else opt=(-newkey rsa:2048); fi
  openssl req -x509 "${opt[@]}" -nodes -days 2 -subj /CN=bench.example -addext subjectAltName=DNS:bench.example \
    -keyout "$OUT/$k.key" -out "$OUT/$k.crt" 2>/dev/null
  cat "$OUT/$k.crt" "$OUT/$k.key" > "$OUT/$k.pem"
done
CE=$(free_port) CR=$(free_port) HE=$(free_port) HR=$(free_port) ADMIN=$(free_port)
b64() { base64 -w0 "$1"; }
mkdir -p "$OUT/config"
cat > "$OUT/config/all.yaml" <<EOF
$(gateway_yaml gw)
  listeners:
  - {name: ecdsa, protocol: HTTPS, port: $CE, tls: {certificateRefs: [{name: ecdsa}]}}
  - {name: rsa, protocol: HTTPS, port: $CR, tls: {certificateRefs: [{name: rsa}]}}
---
apiVersion: v1
kind: Secret
metadata: {name: ecdsa}
type: kubernetes.io/tls
data: {tls.crt: $(b64 "$OUT/ecdsa.crt"), tls.key: $(b64 "$OUT/ecdsa.key")}
---
apiVersion: v1
kind: Secret
metadata: {name: rsa}
type: kubernetes.io/tls
data: {tls.crt: $(b64 "$OUT/rsa.crt"), tls.key: $(b64 "$OUT/rsa.key")}
EOF
cat > "$OUT/haproxy.cfg" <<EOF
global
  nbthread $(nproc)
  maxconn 1000
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode http
  timeout connect 5s
  timeout client 10s
  timeout server 10s
frontend ecdsa
  bind 127.0.0.1:$HE ssl crt $OUT/ecdsa.pem alpn http/1.1
  http-request return status 404
frontend rsa
  bind 127.0.0.1:$HR ssl crt $OUT/rsa.pem alpn http/1.1
  http-request return status 404
EOF
haproxy -db -f "$OUT/haproxy.cfg" & PIDS+=($!); HA_PID=$!
start_gateway; CW_PID=$GW_PID

bench_header "$(haproxy -v | head -1); $(openssl version)"
echo "round,proxy,cert,mode,conns_per_s,resumed,errors,proxy_cpu_ms_per_conn,load1" > "$OUT/raw.csv"
run() { # proxy cert mode port pid
  local p0 p1 line flag=()
  [ "$3" = resumed ] && flag=(-resume)
  p0=$(cpu_ticks "$5")
  line=$("$OUT/tlsbench" -target "127.0.0.1:$4" -c "$CONC" -duration "${DURATION}s" "${flag[@]}")
  p1=$(cpu_ticks "$5")
  awk -v r="$r" -v p="$1" -v c="$2" -v m="$3" -v l="$line" -v pd=$((p1-p0)) -v hz="$HZ" -v load="$(load1)" 'BEGIN{
    split(l, kv, " "); for (i in kv) { split(kv[i], q, "="); v[q[1]] = q[2] }
    printf "%s,%s,%s,%s,%s,%s,%s,%.3f,%s\n", r, p, c, m, v["conns_per_s"], v["resumed"], v["errors"], pd*1000/hz/(v["conns"]>0?v["conns"]:1), load }' | tee -a "$OUT/raw.csv"
}
"$OUT/tlsbench" -target "127.0.0.1:$CE" -c 1 -duration 1s >/dev/null # warm up
for r in $(seq "$ROUNDS"); do
  for m in full resumed; do
    run causeway ecdsa $m "$CE" "$CW_PID"; run haproxy ecdsa $m "$HE" "$HA_PID"
    run causeway rsa $m "$CR" "$CW_PID"; run haproxy rsa $m "$HR" "$HA_PID"
  done
done
echo
echo "| certificate | handshake | Causeway conns/s | HAProxy conns/s | ratio Causeway/HAProxy | Causeway CPU-ms per conn | HAProxy CPU-ms per conn |"
echo "|---|---|---:|---:|---:|---:|---:|"
med() { median "$OUT/raw.csv" "^[0-9]*,$1,$2,$3," "$4"; }
for c in ecdsa rsa; do for m in full resumed; do
  a=$(med causeway $c $m 5) b=$(med haproxy $c $m 5)
  echo "| $c | $m | $a | $b | $(ratio "$a" "$b") | $(med causeway $c $m 8) | $(med haproxy $c $m 8) |"
done; done
