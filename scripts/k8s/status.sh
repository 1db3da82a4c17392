#!/usr/bin/env bash
# status.sh — is the test cluster running? Needs no root.
#   exit 0, "up: ..."    API ready and node Ready: use it
#   exit 1, "down: ..."  none of its daemons runs: start.sh may start one
#   exit 2, "unhealthy: ..." some daemons of a cluster run but it does not answer
#                        (starting, stopping, or broken): leave it alone
# scripts/test.sh uses it to reuse a running cluster instead of starting a
# second one (only one can run per machine: fixed ports, bridge, /tmp/k8s).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/env.sh"
alive=""
for f in "$K8S_DIR"/run/*.pid; do
  [ -s "$f" ] || continue
  p=$(cat "$f")
  if [ -r "/proc/$p/cmdline" ] && tr '\0' ' ' < "/proc/$p/cmdline" | grep -qF -- "$K8S_DIR"; then
    alive="$alive $(basename "$f" .pid)"
  fi
done
down() { if [ -n "$alive" ]; then echo "unhealthy: $* (running:$alive)"; exit 2; else echo "down: $*"; exit 1; fi; }
KUBECTL=$(kubectl_bin) || down "no kubectl"
k() { timeout 20 "$KUBECTL" --kubeconfig "$K8S_DIR/admin.kubeconfig" --request-timeout=10s "$@"; }
[ -r "$K8S_DIR/admin.kubeconfig" ] || down "no $K8S_DIR/admin.kubeconfig"
k get --raw /readyz >/dev/null 2>&1 || down "API server at 127.0.0.1:$K8S_API_PORT not ready"
ready=$(k get node "$K8S_NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)
[ "$ready" = True ] || down "node $K8S_NODE_NAME not Ready"
netpol="NetworkPolicy not enforced"
grep -qw kube-router <<<"$alive" && netpol="NetworkPolicy enforced (kube-router)"
echo "up: Kubernetes $(k version 2>/dev/null | awk '/Server Version/ {print $3}'), node $K8S_NODE_NAME Ready, $netpol, KUBECONFIG=$K8S_DIR/admin.kubeconfig"
