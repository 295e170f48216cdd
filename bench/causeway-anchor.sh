#!/usr/bin/env bash
# Runs Causeway as a proxy under ../shared/bench/anchors.sh (see its header
# for the environment it exports). It writes a configuration equivalent to
# what the other proxies get there — plain HTTP/1.1 on LISTEN_ADDR, TLS with
# h2 on TLS_LISTEN_ADDR, everything forwarded to BACKEND_ADDR — and execs
# the gateway in the foreground with the access log off (as nginx's and
# HAProxy's are in that run).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
: "${LISTEN_PORT:?} ${TLS_LISTEN_PORT:?} ${BACKEND_ADDR:?} ${WORK_DIR:?}"
BIN=${CAUSEWAY_BIN:-./bin/causeway}
cfg=$WORK_DIR/causeway
mkdir -p "$cfg"
indent() { sed 's/^/    /' "$1"; }
cat >"$cfg/bench.yaml" <<YAML
$(gateway_yaml bench)
  listeners:
  - {name: http, protocol: HTTP, port: ${LISTEN_PORT}}
  - name: https
    protocol: HTTPS
    port: ${TLS_LISTEN_PORT}
    tls: {mode: Terminate, certificateRefs: [{name: bench-tls}]}
---
apiVersion: v1
kind: Secret
metadata: {name: bench-tls}
type: kubernetes.io/tls
stringData:
  tls.crt: |
$(indent "${TLS_CERT:?}")
  tls.key: |
$(indent "${TLS_KEY:?}")
---
apiVersion: causeway.dev/v1alpha1
kind: Backend
metadata: {name: backend}
spec:
  endpoints: [{ip: {address: ${BACKEND_ADDR%:*}, port: ${BACKEND_ADDR##*:}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: all}
spec:
  parentRefs: [{name: bench}]
  rules:
  - backendRefs: [{group: causeway.dev, kind: Backend, name: backend}]
YAML
exec "$BIN" gateway --config "$cfg" --access-log off --log-level warn --admin-addr 127.0.0.1:0
