#!/usr/bin/env bash
# check.sh — prove the cluster from start.sh runs real pods: a Deployment of the
# FROM-scratch web image, reached by pod IP, ClusterIP, NodePort and service
# DNS name (from inside a pod via `kubectl exec`), logs, in-cluster API, image
# pulls from a registry on 127.0.0.1, and NetworkPolicy enforcement by
# kube-router (deny-all ingress blocks, allow-same-namespace lets the namespace
# in and keeps others out). Ends with the line "N passed, N failed" and exits
# non-zero on any failure. Leaves nothing behind (deletes its namespaces).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/env.sh"
KUBECTL=$(kubectl_bin)
k() { "$KUBECTL" --kubeconfig "$K8S_DIR/admin.kubeconfig" "$@"; }
NS=check-$(date +%s)-$RANDOM   # fresh name: no stale DNS answers from an earlier run
NS2=$NS-other                  # a second namespace for the NetworkPolicy checks
PASS=0 FAIL=0
check() { # name cmd...
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then PASS=$((PASS + 1)); echo "ok   $name: $(echo "$out" | tail -1)"
  else FAIL=$((FAIL + 1)); echo "FAIL $name: $(echo "$out" | tail -3 | tr '\n' ' ')"; fi
}
# Host-side requests only ever go to our own bridge (pod IPs) or to Service IPs
# that kube-proxy has already translated, or to 127.0.0.1.
svc_programmed() { grep -q -- "-d $1/32" <<<"$(iptables -t nat -S KUBE-SERVICES 2>/dev/null)"; }
waitsvc() { for _ in $(seq 100); do svc_programmed "$1" && return 0; sleep 0.2; done; return 1; }


k create namespace $NS >/dev/null
cat <<EOF | k apply -f - >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: $NS}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: $K8S_WEB_IMAGE
        imagePullPolicy: Never
        env:
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
        - name: SSL_CERT_FILE   # trust the cluster CA for the in-cluster API check
          value: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
        ports: [{containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /healthz, port: 8080}
          periodSeconds: 1
        resources:   # Guaranteed QoS (exercises the oom_score_adj clamp)
          requests: {cpu: 50m, memory: 32Mi}
          limits: {cpu: 50m, memory: 32Mi}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: $NS}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np, namespace: $NS}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
EOF
t0=$(date +%s.%N)
check "deployment rollout" k -n $NS rollout status deploy/web --timeout=120s
echo "     (2 pods ready in $(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN{printf "%.1f", a-b}')s)"
PODS=($(k -n $NS get pods -l app=web -o jsonpath='{.items[*].metadata.name}'))
IPS=($(k -n $NS get pods -l app=web -o jsonpath='{.items[*].status.podIP}'))
CIP=$(k -n $NS get svc web -o jsonpath='{.spec.clusterIP}')
echo "     pods: ${PODS[*]}  ips: ${IPS[*]}  clusterIP: $CIP"

check "pod IP from host" curl -sf --max-time 5 "http://${IPS[0]}:8080/via-pod-ip"
check "ClusterIP from host" bash -c "$(declare -f svc_programmed waitsvc); waitsvc $CIP && curl -sf --max-time 5 http://$CIP/via-clusterip"
check "NodePort on 127.0.0.1" curl -sf --max-time 5 "http://127.0.0.1:30080/via-nodeport"
check "NodePort on node IP" curl -sf --max-time 5 "http://$K8S_NODE_IP:30080/via-nodeport"
check "pod -> pod IP" k -n $NS exec "${PODS[0]}" -- /web get "http://${IPS[1]}:8080/pod-to-pod"
check "pod -> ClusterIP" k -n $NS exec "${PODS[0]}" -- /web get "http://$CIP/pod-to-svc"
check "hairpin (pod -> own service)" bash -c "for i in 1 2 3 4 5 6; do '$KUBECTL' --kubeconfig '$K8S_DIR/admin.kubeconfig' -n $NS exec ${PODS[0]} -- /web get http://$CIP/hairpin || exit 1; done | sort | uniq -c | tr -s ' ' | tr '\n' ';'"
if k -n kube-system get deploy coredns >/dev/null 2>&1; then
  check "DNS: service name -> ClusterIP" bash -c "out=\$('$KUBECTL' --kubeconfig '$K8S_DIR/admin.kubeconfig' -n $NS exec ${PODS[0]} -- /web lookup web.$NS.svc.$K8S_CLUSTER_DOMAIN) && echo \"\$out\" && [ \"\$out\" = $CIP ]"
  check "DNS: short name over HTTP" k -n $NS exec "${PODS[0]}" -- /web get "http://web/by-short-name"
  check "DNS: kubernetes.default" k -n $NS exec "${PODS[0]}" -- /web lookup kubernetes.default
else
  echo "skip DNS checks (no CoreDNS)"
fi
check "kubectl logs" k -n $NS logs "${PODS[0]}"
check "API from a pod (https://kubernetes.default.svc, TLS verified)" k -n $NS exec "${PODS[0]}" -- /web get "https://$K8S_API_SERVICE_IP/livez"
if k -n kube-system get deploy coredns >/dev/null 2>&1; then
  check "API from a pod by DNS name" k -n $NS exec "${PODS[0]}" -- /web get "https://kubernetes.default.svc/readyz"
fi

# NetworkPolicy: enforced by kube-router when start.sh ran it (K8S_NETPOL=1 and
# build.sh built it); otherwise the bridge CNI accepts policies and ignores them.
# Each state change is awaited (kube-router applies a policy within about a
# second of its creation), never assumed after a fixed sleep.
reach() { # ns pod url: the request from that pod succeeds
  k -n "$1" exec "$2" -- /web get "$3" >/dev/null 2>&1
}
eventually() { # ok|blocked ns pod url: poll up to 30 s until the request succeeds / fails
  local want=$1 i; shift
  for i in $(seq 60); do
    if reach "$@"; then [ "$want" = ok ] && { echo "reachable after $i tries"; return 0; }
    else [ "$want" = blocked ] && { echo "blocked after $i tries"; return 0; }; fi
    sleep 0.5
  done
  echo "still not $want after 30 s"; return 1
}
still() { # ok|blocked ns pod url: three requests in a row give that result
  local want=$1 i; shift
  for i in 1 2 3; do
    if reach "$@"; then [ "$want" = ok ] || { echo "request $i went through"; return 1; }
    else [ "$want" = blocked ] || { echo "request $i failed"; return 1; }; fi
  done
  echo "3 of 3 $want"
}
if kill -0 "$(cat "$K8S_DIR/run/kube-router.pid" 2>/dev/null)" 2>/dev/null; then
  k create namespace $NS2 >/dev/null
  k -n $NS2 run client --image="$K8S_WEB_IMAGE" --image-pull-policy=Never --port=8080 >/dev/null
  k -n $NS2 wait --for=condition=Ready pod/client --timeout=60s >/dev/null
  TARGET="http://${IPS[1]}:8080/netpol"
  check "netpol: no policy, other namespace -> pod" eventually ok $NS2 client "$TARGET"
  cat <<EOF | k apply -f - >/dev/null
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all-ingress, namespace: $NS}
spec:
  podSelector: {}
  policyTypes: [Ingress]
EOF
  check "netpol: deny-all ingress blocks pod -> pod in the namespace" eventually blocked $NS "${PODS[0]}" "$TARGET"
  check "netpol: deny-all ingress blocks other namespace -> pod" still blocked $NS2 client "$TARGET"
  check "netpol: kubelet probes still pass under deny-all (node -> pod)" k -n $NS wait --for=condition=Ready pod -l app=web --timeout=10s
  cat <<EOF | k apply -f - >/dev/null
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-same-namespace, namespace: $NS}
spec:
  podSelector: {}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {}}]
EOF
  check "netpol: allow-same-namespace lets pod -> pod through" eventually ok $NS "${PODS[0]}" "$TARGET"
  check "netpol: allow-same-namespace keeps other namespace out" still blocked $NS2 client "$TARGET"
  k -n $NS delete networkpolicy --all >/dev/null
  check "netpol: policies deleted, other namespace -> pod again" eventually ok $NS2 client "$TARGET"
else
  cat <<EOF | k apply -f - >/dev/null
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all-ingress, namespace: $NS}
spec:
  podSelector: {}
  policyTypes: [Ingress]
EOF
  if reach $NS "${PODS[0]}" "http://${IPS[1]}:8080/after-deny-all"; then
    echo "note NetworkPolicy NOT enforced (kube-router not running): deny-all ingress accepted by the API, traffic still flows"
  else
    echo "note NetworkPolicy appears enforced without kube-router"
  fi
  k -n $NS delete networkpolicy --all >/dev/null
fi

check "pod restart after kill (kubelet restarts container)" bash -c "
  K='$KUBECTL --kubeconfig $K8S_DIR/admin.kubeconfig -n $NS'
  \$K delete pod ${PODS[0]} --wait=false >/dev/null && \$K rollout status deploy/web --timeout=60s >/dev/null && \$K get pods -l app=web --no-headers | wc -l"

# Image pull from a registry on 127.0.0.1 (containerd's CRI uses plain HTTP for
# loopback registries without extra config). Needs Debian's docker-registry.
if command -v docker-registry >/dev/null; then
  REG_DIR=$(mktemp -d /tmp/k8s-check-registry.XXXXXX)
  REG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 35999)
  printf 'version: 0.1\nstorage: {filesystem: {rootdirectory: %s/data}}\nhttp: {addr: "127.0.0.1:%s"}\nlog: {level: warn}\n' "$REG_DIR" "$REG_PORT" > "$REG_DIR/config.yml"
  setsid bash -c 'echo $$ > "$0"; exec docker-registry serve "$1"' "$REG_DIR/pid" "$REG_DIR/config.yml" > "$REG_DIR/log" 2>&1 < /dev/null &
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$REG_PORT/v2/" >/dev/null && break; sleep 0.1; done
  REF="127.0.0.1:$REG_PORT/nullops/web:pulled"
  $CTR images tag "$K8S_WEB_IMAGE" "$REF" >/dev/null && $CTR images push --plain-http "$REF" >/dev/null 2>&1
  $CTR images rm "$REF" >/dev/null 2>&1   # make the kubelet really pull it
  k -n $NS run pulled --image="$REF" --image-pull-policy=Always --port=8080 >/dev/null
  check "image pull from 127.0.0.1 registry" k -n $NS wait --for=condition=Ready pod/pulled --timeout=60s
  k -n $NS delete pod pulled --wait=true >/dev/null 2>&1
  $CTR images rm "$REF" >/dev/null 2>&1
  p=$(cat "$REG_DIR/pid" 2>/dev/null) && [ -n "$p" ] && kill "$p" 2>/dev/null
  sleep 0.3; rm -rf "$REG_DIR"
else
  echo "skip registry pull check (no docker-registry binary)"
fi

k delete namespace $NS $NS2 --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
