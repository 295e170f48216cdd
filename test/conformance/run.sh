#!/usr/bin/env bash
# Runs the unmodified Gateway API conformance suite (v1.6.3) against
# `causeway controller` (in-process mode) on the k8s test bed of
# ../shared/k8s-testbed: real etcd, kube-apiserver and
# kube-controller-manager, and a fake kubelet whose echo pods live in network
# namespaces on a bridge. Writes the suite's report to conformance/report.yaml
# and exits non-zero if any claimed test fails.
#
# Needs root (the bed's pod network; Causeway binds :80/:443 on 127.0.2.N).
# The bed's binaries are built once and cached in $BED/bin (/tmp/k8sbed/bin):
# a cold build takes 20-40 minutes, a warm start seconds.
#
# Env:
#   TESTBED    the test bed's scripts (default: ../shared/k8s-testbed next to the repo)
#   BED        its state directory (default /tmp/k8sbed)
#   PROFILES   conformance profiles (default GATEWAY-HTTP,GATEWAY-GRPC,GATEWAY-TLS,GATEWAY-TCP)
#   FEATURES   extended features claimed, comma-separated (default: the list below)
#   RUN_TEST   run one test only (the suite's -run-test)
#   REPORT     report path (default conformance/report.yaml in the repo)
#   KEEP=1     leave the bed and Causeway running afterwards (KEEP=1 runs reuse the base pods)
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
TESTBED="${TESTBED:-$(cd "$REPO/../shared/k8s-testbed" 2>/dev/null && pwd || echo /work/shared/k8s-testbed)}"
export BED="${BED:-/tmp/k8sbed}"
PROFILES="${PROFILES:-GATEWAY-HTTP,GATEWAY-GRPC,GATEWAY-TLS,GATEWAY-TCP}"
FEATURES="${FEATURES-}"
REPORT="${REPORT:-$REPO/conformance/report.yaml}"
OUT="$BED/causeway"
mkdir -p "$OUT" "$(dirname "$REPORT")"

[ "$(id -u)" = 0 ] || { echo "conformance: needs root (pod network namespaces, ports 80/443)" >&2; exit 1; }

t0=$(date +%s)
"$TESTBED/build-k8s-bins.sh"
"$TESTBED/build-bed-tools.sh"
"$REPO/build.sh" "$OUT/causeway"
(cd "$REPO" && go build -o "$OUT/podlogs" ./test/conformance/podlogs)
t1=$(date +%s)

causeway_pid=""
podlogs_pid=""
# The /etc/hosts line that makes the Node's name resolvable (see podlogs below).
hosts_tag="# causeway-conformance-podlogs"
unhost() {
  grep -qF "$hosts_tag" /etc/hosts 2>/dev/null || return 0
  # In place, not sed -i: /etc/hosts may be a bind mount that cannot be replaced.
  local kept; kept=$(grep -vF "$hosts_tag" /etc/hosts || true)
  printf '%s\n' "$kept" >/etc/hosts
}
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then
    echo "conformance: KEEP=1, leaving the bed, Causeway (pid ${causeway_pid:-none}) and podlogs (pid ${podlogs_pid:-none}, with its /etc/hosts line) running"
    return
  fi
  if [ -n "$causeway_pid" ]; then kill "$causeway_pid" 2>/dev/null || true; wait "$causeway_pid" 2>/dev/null || true; fi
  if [ -n "$podlogs_pid" ]; then kill "$podlogs_pid" 2>/dev/null || true; wait "$podlogs_pid" 2>/dev/null || true; fi
  unhost
  "$TESTBED/testbed-down.sh" >/dev/null 2>&1 || true
}
trap cleanup EXIT

WITH_KCM=1 WITH_FAKE_KUBELET=1 "$TESTBED/testbed-up.sh"
export KUBECONFIG="$BED/kubeconfig" PATH="$BED/bin:$PATH"
# The fake kubelet reuses pod IPs; the host's neighbour entry for a reused
# IP keeps the deleted pod's MAC until it expires (30 s or more), longer
# than the suite retries a TCP backend. Re-validate entries on the bed's
# bridge within a second or two instead.
nb="/proc/sys/net/ipv4/neigh/${BRIDGE:-cwbr0}"
if [ -d "$nb" ]; then echo 1000 >"$nb/base_reachable_time_ms"; echo 1 >"$nb/delay_first_probe_time"; fi
kubectl apply --server-side --force-conflicts -k "$BED/bin/crds-gateway-api-v1.6.3/experimental" >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
# A previous run's namespaces may still be terminating (their deletion
# continues across a bed restart): the suite cannot recreate them until gone.
for ns in gateway-conformance-infra gateway-conformance-app-backend gateway-conformance-web-backend; do
  if [ -n "$(kubectl get namespace "$ns" -o jsonpath='{.metadata.deletionTimestamp}' 2>/dev/null)" ]; then
    kubectl wait --for=delete "namespace/$ns" --timeout=180s >/dev/null 2>&1 || true
  fi
done

# Pod logs (pods/log), which the request-mirror tests read: the apiserver
# proxies them to the kubelet at <Node address>:10250, which the fake kubelet
# does not serve; podlogs does, on the Node's InternalIP (the bed's bridge).
# The apiserver prefers the Node's Hostname address (bed-node), and the fake
# kubelet rewrites the Node's status every 30 s, so the name must resolve:
# an /etc/hosts line, removed on exit (left with KEEP=1, removed by the next run).
node_ip=$(kubectl get node bed-node -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')
if [ -f "$OUT/podlogs.pid" ] && kill -0 "$(cat "$OUT/podlogs.pid")" 2>/dev/null; then
  kill "$(cat "$OUT/podlogs.pid")" 2>/dev/null || true
  sleep 0.5
fi
"$OUT/podlogs" --kubeconfig "$KUBECONFIG" --node bed-node --listen "$node_ip:10250" --pods-dir "$BED/pods" >"$OUT/podlogs.log" 2>&1 &
podlogs_pid=$!
echo "$podlogs_pid" >"$OUT/podlogs.pid"
unhost
echo "$node_ip bed-node $hosts_tag" >>/etc/hosts
for _ in $(seq 50); do curl -sfk "https://$node_ip:10250/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -sfk "https://$node_ip:10250/healthz" >/dev/null || { echo "conformance: podlogs not serving"; tail -5 "$OUT/podlogs.log"; exit 1; }
t2=$(date +%s)

if [ -f "$OUT/causeway.pid" ] && kill -0 "$(cat "$OUT/causeway.pid")" 2>/dev/null; then
  kill "$(cat "$OUT/causeway.pid")" 2>/dev/null || true
  sleep 1
fi
"$OUT/causeway" controller --kubeconfig "$KUBECONFIG" --admin-addr 127.0.0.1:19901 \
  --gateway-address-pool 127.0.2.0/24 --gateway-class causeway --drain-timeout 2s >"$OUT/causeway.log" 2>&1 &
causeway_pid=$!
echo "$causeway_pid" >"$OUT/causeway.pid"
kubectl wait --for=condition=Accepted gatewayclass/causeway --timeout=60s >/dev/null
echo "conformance: builds checked in $((t1 - t0))s, bed up in $((t2 - t1))s; Causeway running (log $OUT/causeway.log)"

args=(-gateway-class=causeway -conformance-profiles="$PROFILES"
  -report-output="$REPORT" -organization=causeway -project=causeway
  -url=https://causeway.dev -version="$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo dev)"
  -contact=https://causeway.dev -cleanup-base-resources="$([ "${KEEP:-0}" = 1 ] && echo false || echo true)"
  # GatewayStaticAddresses: a loopback address outside the pool Causeway
  # can bind, and one from TEST-NET-1 that is on no interface here.
  -usable-address=127.0.3.10 -unusable-address=192.0.2.10)
# Without a feature list the suite takes the GatewayClass's
# status.supportedFeatures, which Causeway publishes; -run-test turns that
# inference off, so the list is then read from the status here.
if [ -z "$FEATURES" ] && [ -n "${RUN_TEST:-}" ]; then
  FEATURES=$(kubectl get gatewayclass causeway -o jsonpath='{range .status.supportedFeatures[*]}{.name},{end}')
  FEATURES="${FEATURES%,}"
fi
[ -n "$FEATURES" ] && args+=(-supported-features="$FEATURES")
[ -n "${RUN_TEST:-}" ] && args+=(-run-test="$RUN_TEST")
[ -n "${SKIP_TESTS:-}" ] && args+=(-skip-tests="$SKIP_TESTS")
cd "$OUT"
"$TESTBED/run-conformance.sh" "${args[@]}" 2>&1 | tee "$OUT/suite.log"
rc=${PIPESTATUS[0]}
echo "conformance: suite exit $rc, $(( $(date +%s) - t2 ))s; report $REPORT"
exit "$rc"
