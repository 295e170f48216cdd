# Shell helpers of the benchmark scripts under bench/ (tcp, grpc and tls
# run.sh, causeway-anchor.sh). Source it with `set -euo pipefail` in force;
# bench_setup expects the repository root as the working directory.

# bench_setup NAME: makes $OUT (/tmp/causeway-bench-NAME.*), kills the
# processes in $PIDS and removes the binaries on exit, and puts the
# gateway at $OUT/causeway (the release build, ./build.sh, or a copy of
# $CAUSEWAY_BIN) and the load tool ./bench/NAME at $OUT/NAMEbench.
bench_setup() {
  OUT=$(mktemp -d "/tmp/causeway-bench-$1.XXXXXX")
  BENCH_TOOL=$1bench
  PIDS=()
  trap bench_cleanup EXIT
  if [ -n "${CAUSEWAY_BIN:-}" ]; then cp "$CAUSEWAY_BIN" "$OUT/causeway"; else ./build.sh "$OUT/causeway"; fi
  go build -trimpath -o "$OUT/$BENCH_TOOL" "./bench/$1"
}

bench_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$OUT/causeway" "$OUT/$BENCH_TOOL"
}

# need_haproxy installs HAProxy if it is missing.
need_haproxy() {
  command -v haproxy >/dev/null || { apt-get update -qq && apt-get install -y -qq haproxy >/dev/null; }
}

# free_port prints a TCP port that was free on 127.0.0.1 a moment ago.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# cpu_ticks PID prints the process's user+system CPU time in clock ticks
# (HZ per second); the command name in /proc/PID/stat may hold spaces, so
# the fields are counted after its closing parenthesis.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12+$13}'; }
HZ=$(getconf CLK_TCK)

# gateway_yaml NAME prints the GatewayClass causeway and the head of a
# Gateway NAME of it on 127.0.0.1, up to its listeners, which follow.
gateway_yaml() {
  cat <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: causeway}
spec: {controllerName: causeway.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: $1}
spec:
  gatewayClassName: causeway
  addresses: [{type: IPAddress, value: 127.0.0.1}]
EOF
}

# start_gateway runs `causeway gateway --config $OUT/config` with its admin
# server on $ADMIN, sets GW_PID and waits until it is ready.
start_gateway() {
  "$OUT/causeway" gateway --config "$OUT/config" --admin-addr "127.0.0.1:$ADMIN" --access-log off --log-level warn &
  GW_PID=$!
  PIDS+=("$GW_PID")
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$ADMIN/ready" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fs "http://127.0.0.1:$ADMIN/ready" >/dev/null
}

# bench_header [MORE]: the run's first line: date, commit, binary, cores,
# load, then MORE (the other programs' versions).
bench_header() {
  echo "date: $(date -u +%FT%TZ); commit $(git rev-parse --short HEAD); binary ${CAUSEWAY_BIN:-built from the work tree}; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)${1:+; $1}"
}

# load1 prints the one-minute load average.
load1() { cut -d' ' -f1 /proc/loadavg; }

# median FILE PATTERN FIELD prints the median of the comma-separated FIELD
# of FILE's lines matching the grep PATTERN.
median() { grep "$2" "$1" | cut -d, -f"$3" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

# ratio A B prints A/B to two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
