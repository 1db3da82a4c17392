#!/usr/bin/env bash
# start.sh — start a real single-node Kubernetes cluster from the binaries that
# build.sh made: etcd (Debian) + kube-apiserver + kube-controller-manager +
# kube-scheduler + kubelet (CRI -> a private containerd, Debian) + kube-proxy
# (iptables) + CNI bridge (Debian containernetworking-plugins) + kube-router
# (NetworkPolicy only) + CoreDNS.
#
# Everything lives under $K8S_DIR (default /tmp/k8s); Docker's own containerd is
# never touched. Run as root. Prints KUBECONFIG=... when the node is Ready.
# Undo with stop.sh (also after a failed start).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/env.sh"

T0=$(date +%s.%N)
say() { printf '[start %6.1fs] %s\n' "$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN{print a-b}')" "$*"; }
die() { echo "start.sh: $*" >&2; exit 1; }
trap 'echo "start.sh failed (logs: $K8S_DIR/log); run stop.sh to clean up" >&2' ERR

[ "$(id -u)" = 0 ] || die "must run as root"
[ -n "${K8S_NODE_IP:-}" ] || die "cannot find the node IP (no default route); set K8S_NODE_IP"
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
  [ -x "$K8S_BIN/$b" ] || die "$K8S_BIN/$b missing: run build.sh first"
done
for b in etcd containerd containerd-shim-runc-v2 runc ctr iptables conntrack openssl curl; do
  command -v "$b" >/dev/null || die "$b not installed: run build.sh (it apt-installs the packages)"
done
[ -x /usr/lib/cni/bridge ] || die "containernetworking-plugins not installed"
NETPOL=0
if [ "$K8S_NETPOL" = 1 ] && [ -x "$K8S_BIN/kube-router" ]; then
  NETPOL=1
  command -v ipset >/dev/null || die "ipset not installed: run build.sh (it apt-installs the packages)"
fi
KUBECTL=$(kubectl_bin) || die "no kubectl"
if [ -d "$K8S_DIR/run" ] && ls "$K8S_DIR"/run/*.pid >/dev/null 2>&1; then
  for f in "$K8S_DIR"/run/*.pid; do
    if kill -0 "$(cat "$f")" 2>/dev/null; then die "already running ($f); run stop.sh first"; fi
  done
fi
ETCD_PEER=$((K8S_ETCD_PORT + 1)); ETCD_METRICS=$((K8S_ETCD_PORT + 2))
PORTS="$K8S_ETCD_PORT $ETCD_PEER $ETCD_METRICS $K8S_API_PORT 10248 10249 10250 10256 10257 10259"
[ $NETPOL = 1 ] && PORTS="$PORTS $K8S_NETPOL_HEALTH_PORT"
for p in $PORTS; do
  if [ -n "$(ss -Hltn "sport = :$p")" ]; then die "TCP port $p is already in use"; fi
done

P=$K8S_DIR/pki
mkdir -p "$K8S_DIR"/{run,log,pki,etcd,kubelet,pod-logs,cni/net.d,cni/ipam,containerd,manifests}
# Host paths the kubelet/CNI may create outside $K8S_DIR; stop.sh removes those that were absent.
# (kubelet's device-plugin socket dir and libcni's result cache are fixed paths.)
for d in /var/lib/kubelet/device-plugins /var/lib/kubelet /var/lib/cni/results /var/lib/cni \
         /var/log/containers /var/log/pods /var/run/netns /run/containerd/runc /run/containerd/fifo; do
  [ -e "$d" ] || echo "$d" >> "$K8S_DIR/host-dirs-created"
done

# --- host settings we change; stop.sh restores them -------------------------
# kubelet (protectKernelDefaults=false) sets vm.overcommit_memory=1,
# kernel.panic=10, kernel.panic_on_oops=1, ...; kube-proxy sets route_localnet=1
# for NodePorts on 127.0.0.1.
SYSCTLS="vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables net.ipv4.ip_forward"
if [ ! -f "$K8S_DIR/sysctl.saved" ]; then
  for s in $SYSCTLS; do echo "$s=$(sysctl -n "$s")"; done > "$K8S_DIR/sysctl.saved"
fi
modprobe br_netfilter 2>/dev/null || true
modprobe overlay 2>/dev/null || true
sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1

# --- PKI (openssl, ECDSA P-256: fast) ----------------------------------------
genkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
mkcert() { # name subject extendedKeyUsage [subjectAltName] [ca]
  local n=$1 subj=$2 eku=$3 san=${4:-} ca=${5:-ca}
  genkey "$P/$n.key"
  openssl req -new -key "$P/$n.key" -subj "$subj" -out "$P/$n.csr" 2>/dev/null
  { echo "basicConstraints=CA:FALSE"; echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"; [ -n "$san" ] && echo "subjectAltName=$san"; } > "$P/$n.ext"
  openssl x509 -req -in "$P/$n.csr" -CA "$P/$ca.crt" -CAkey "$P/$ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$P/$n.ext" -out "$P/$n.crt" 2>/dev/null
  rm -f "$P/$n.csr" "$P/$n.ext"
}
mkca() { # name CN
  genkey "$P/$1.key"
  openssl req -x509 -new -key "$P/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$P/$1.crt" 2>/dev/null
}
if [ ! -f "$P/ca.crt" ]; then
  mkca ca nullops-k8s-ca
  mkca front-proxy-ca nullops-k8s-front-proxy-ca   # API aggregation (metrics-server & co)
  mkcert front-proxy-client "/CN=front-proxy-client" clientAuth "" front-proxy-ca
  mkcert apiserver "/CN=kube-apiserver" serverAuth \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$K8S_CLUSTER_DOMAIN,DNS:localhost,IP:127.0.0.1,IP:$K8S_API_SERVICE_IP,IP:$K8S_NODE_IP"
  mkcert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  mkcert admin "/O=system:masters/CN=kubernetes-admin" clientAuth
  mkcert controller-manager "/CN=system:kube-controller-manager" clientAuth
  mkcert scheduler "/CN=system:kube-scheduler" clientAuth
  mkcert kube-proxy "/CN=system:kube-proxy" clientAuth
  mkcert kubelet "/O=system:nodes/CN=system:node:$K8S_NODE_NAME" clientAuth
  mkcert kubelet-server "/CN=$K8S_NODE_NAME" serverAuth "DNS:$K8S_NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$K8S_NODE_IP"
  genkey "$P/sa.key"
  openssl pkey -in "$P/sa.key" -pubout -out "$P/sa.pub" 2>/dev/null
  chmod 600 "$P"/*.key
fi
if [ $NETPOL = 1 ] && [ ! -f "$P/kube-router.crt" ]; then
  mkcert kube-router "/CN=system:kube-router" clientAuth
  chmod 600 "$P/kube-router.key"
fi
kubeconfig() { # file user certname
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: nullops
  cluster:
    server: https://127.0.0.1:$K8S_API_PORT
    certificate-authority: $P/ca.crt
users:
- name: $2
  user:
    client-certificate: $P/$3.crt
    client-key: $P/$3.key
contexts:
- name: nullops
  context: {cluster: nullops, user: $2}
current-context: nullops
EOF
}
kubeconfig "$K8S_DIR/admin.kubeconfig" kubernetes-admin admin
kubeconfig "$K8S_DIR/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
kubeconfig "$K8S_DIR/scheduler.kubeconfig" system:kube-scheduler scheduler
kubeconfig "$K8S_DIR/kube-proxy.kubeconfig" system:kube-proxy kube-proxy
kubeconfig "$K8S_DIR/kubelet.kubeconfig" "system:node:$K8S_NODE_NAME" kubelet
[ $NETPOL = 0 ] || kubeconfig "$K8S_DIR/kube-router.kubeconfig" system:kube-router kube-router
say "pki + kubeconfigs ready (node $K8S_NODE_NAME, ip $K8S_NODE_IP)"

# --- helpers -----------------------------------------------------------------
startd() { # name cmd... : start a daemon in its own session; the daemon writes its own PID
  local n=$1 i; shift
  rm -f "$K8S_DIR/run/$n.pid"
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$K8S_DIR/run/$n.pid" "$@" >>"$K8S_DIR/log/$n.log" 2>&1 </dev/null &
  for i in $(seq 100); do [ -s "$K8S_DIR/run/$n.pid" ] && return 0; sleep 0.05; done
  die "$n did not start"
}
waitfor() { # name seconds cmd... : poll cmd until it succeeds; fail if the daemon died
  local n=$1 t=$2; shift 2
  local end=$(( $(date +%s) + t ))
  while ! "$@" >/dev/null 2>&1; do
    if [ -f "$K8S_DIR/run/$n.pid" ] && ! kill -0 "$(cat "$K8S_DIR/run/$n.pid")" 2>/dev/null; then
      echo "--- $n died; last log lines:" >&2; tail -30 "$K8S_DIR/log/$n.log" >&2; exit 1
    fi
    if [ "$(date +%s)" -ge "$end" ]; then
      echo "--- timeout waiting for $n; last log lines:" >&2; tail -30 "$K8S_DIR/log/$n.log" >&2; exit 1
    fi
    sleep 0.25
  done
}
CURL_ADMIN=(curl -sf --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key")
k() { "$KUBECTL" --kubeconfig "$K8S_DIR/admin.kubeconfig" "$@"; }

# --- etcd (Debian etcd-server, loopback, no fsync: test data only) ----------
startd etcd etcd --name "$K8S_NODE_NAME" --data-dir "$K8S_DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$K8S_ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$K8S_ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-cluster "$K8S_NODE_NAME=http://127.0.0.1:$ETCD_PEER" --listen-metrics-urls "http://127.0.0.1:$ETCD_METRICS" \
  --quota-backend-bytes 2147483648 --unsafe-no-fsync --snapshot-count 10000
waitfor etcd 30 curl -sf "http://127.0.0.1:$K8S_ETCD_PORT/health"
say "etcd up"

# --- containerd: a separate instance with its own root/state/socket ---------
cat > "$K8S_DIR/cni/net.d/10-nullops.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "nullops-k8s",
  "plugins": [
    {
      "type": "bridge", "bridge": "$K8S_BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": {"type": "host-local", "dataDir": "$K8S_DIR/cni/ipam",
               "ranges": [[{"subnet": "$K8S_POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
cat > "$K8S_DIR/containerd/config.toml" <<EOF
version = 2
root = "$K8S_DIR/containerd/root"
state = "$K8S_DIR/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$K8S_DIR/containerd.sock"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$K8S_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$K8S_PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  # root here lacks CAP_SYS_RESOURCE: negative oom_score_adj (pause -998,
  # Guaranteed pods -997) fails in runc; clamp to containerd's own score.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$K8S_DIR/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$K8S_DIR/cni/net.d"
    max_conf_num = 1
EOF
startd containerd containerd --config "$K8S_DIR/containerd/config.toml"
waitfor containerd 30 $CTR version
for img in "$K8S_IMAGES"/*.tar; do $CTR images import "$img" >/dev/null; done
IMAGES=$($CTR images ls -q | grep -v '^sha256:' || true)
grep -qx "$K8S_PAUSE_IMAGE" <<<"$IMAGES" || die "pause image $K8S_PAUSE_IMAGE not imported"
say "containerd up, images imported: $(echo $IMAGES)"

# Create the CNI bridge up front with its gateway address (the bridge plugin
# reuses it), and route the Service CIDR onto it too: pod and ClusterIP
# traffic then never follows the default route off the machine, even before
# kube-proxy has written its rules.
if ! ip link show "$K8S_BRIDGE" >/dev/null 2>&1; then
  ip link add "$K8S_BRIDGE" type bridge
fi
ip addr replace "${K8S_POD_CIDR%.*}.1/${K8S_POD_CIDR#*/}" dev "$K8S_BRIDGE"
ip link set "$K8S_BRIDGE" up
ip route replace "$K8S_SERVICE_CIDR" dev "$K8S_BRIDGE"

# Docker sets the FORWARD policy to DROP; let pod traffic through the bridge.
iptables -N NULLOPS-K8S-FWD 2>/dev/null || iptables -F NULLOPS-K8S-FWD
iptables -A NULLOPS-K8S-FWD -i "$K8S_BRIDGE" -j ACCEPT
iptables -A NULLOPS-K8S-FWD -o "$K8S_BRIDGE" -j ACCEPT
iptables -C FORWARD -j NULLOPS-K8S-FWD 2>/dev/null || iptables -I FORWARD 1 -j NULLOPS-K8S-FWD

# --- kube-apiserver -----------------------------------------------------------
startd kube-apiserver "$K8S_BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$K8S_ETCD_PORT" \
  --bind-address=0.0.0.0 --secure-port="$K8S_API_PORT" --advertise-address="$K8S_NODE_IP" \
  --service-cluster-ip-range="$K8S_SERVICE_CIDR" --service-node-port-range=30000-32767 \
  --client-ca-file="$P/ca.crt" --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
  --kubelet-client-certificate="$P/apiserver-kubelet-client.crt" --kubelet-client-key="$P/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$P/ca.crt" --kubelet-preferred-address-types=InternalIP,Hostname \
  --service-account-issuer="https://kubernetes.default.svc.$K8S_CLUSTER_DOMAIN" \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --requestheader-client-ca-file="$P/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$P/front-proxy-client.crt" --proxy-client-key-file="$P/front-proxy-client.key" \
  --allow-privileged=true --profiling=false --event-ttl=1h --v=1
waitfor kube-apiserver 120 "${CURL_ADMIN[@]}" "https://127.0.0.1:$K8S_API_PORT/readyz"
say "kube-apiserver ready"

# --- controller-manager, scheduler -----------------------------------------
startd kube-controller-manager "$K8S_BIN/kube-controller-manager" \
  --kubeconfig="$K8S_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$K8S_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$K8S_DIR/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=10257 --leader-elect=false \
  --use-service-account-credentials=true \
  --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
  --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
  --cluster-cidr="$K8S_POD_CIDR" --allocate-node-cidrs=false --profiling=false \
  --feature-gates=WatchListClient=false --v=1   # etcd 3.4 lacks RequestWatchProgress: skip the noisy fallback
startd kube-scheduler "$K8S_BIN/kube-scheduler" \
  --kubeconfig="$K8S_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig="$K8S_DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig="$K8S_DIR/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false --profiling=false --v=1
waitfor kube-controller-manager 60 curl -skf https://127.0.0.1:10257/healthz
waitfor kube-scheduler 60 curl -skf https://127.0.0.1:10259/healthz
say "controller-manager + scheduler healthy"

# --- kubelet ------------------------------------------------------------------
# Pods get cluster DNS only; no upstream resolver is handed to them (sandbox).
echo "# no upstream DNS for pods" > "$K8S_DIR/resolv.conf"
cat > "$K8S_DIR/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $K8S_NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $P/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $P/kubelet-server.crt
tlsPrivateKeyFile: $P/kubelet-server.key
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$K8S_DIR/containerd.sock
clusterDomain: $K8S_CLUSTER_DOMAIN
clusterDNS: [$K8S_DNS_IP]
resolvConf: $K8S_DIR/resolv.conf
failSwapOn: false
protectKernelDefaults: false
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
maxPods: 110
rotateCertificates: false
serverTLSBootstrap: false
podLogsDir: $K8S_DIR/pod-logs
EOF
startd kubelet "$K8S_BIN/kubelet" --config="$K8S_DIR/kubelet-config.yaml" \
  --kubeconfig="$K8S_DIR/kubelet.kubeconfig" --root-dir="$K8S_DIR/kubelet" \
  --hostname-override="$K8S_NODE_NAME" --node-ip="$K8S_NODE_IP" \
  --pod-infra-container-image="$K8S_PAUSE_IMAGE" --oom-score-adj=0 --v=1
waitfor kubelet 60 curl -sf http://127.0.0.1:10248/healthz
waitfor kubelet 60 k get node "$K8S_NODE_NAME"
say "kubelet registered node $K8S_NODE_NAME"

# --- kube-proxy (iptables mode; leaves conntrack sysctls alone) --------------
cat > "$K8S_DIR/kube-proxy-config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $K8S_DIR/kube-proxy.kubeconfig}
hostnameOverride: $K8S_NODE_NAME
mode: iptables
clusterCIDR: $K8S_POD_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: true, masqueradeAll: false, minSyncPeriod: 1s, syncPeriod: 30s}
nodePortAddresses: ["127.0.0.0/8", "$K8S_NODE_IP/32"]
EOF
startd kube-proxy "$K8S_BIN/kube-proxy" --config="$K8S_DIR/kube-proxy-config.yaml" --v=1
waitfor kube-proxy 60 curl -sf http://127.0.0.1:10256/healthz

k wait --for=condition=Ready "node/$K8S_NODE_NAME" --timeout=120s >/dev/null
say "node Ready, kube-proxy healthy"

# The default ServiceAccount must exist before pods can be created.
waitfor kube-controller-manager 60 k -n default get serviceaccount default

# --- kube-router, firewall only: enforces NetworkPolicy ----------------------
# The bridge CNI has no policy engine; kube-router's NetworkPolicy controller
# (--run-firewall; no routing, no service proxy: kube-proxy does Services) adds
# per-pod iptables chains and ipsets. It runs on the host like kube-proxy, with
# its own client certificate and a read-only ClusterRole. Its iptables-restore is
# our wrapper (scripts/k8s/kube-router-iptables-restore), which only ever
# rewrites kube-router's own chains, so Docker's and kube-proxy's rules made at
# the same moment survive.
if [ $NETPOL = 1 ]; then
  k apply -f "$HERE/manifests/kube-router.yaml" >/dev/null
  mkdir -p "$K8S_DIR/kube-router-path"
  install -m 755 "$HERE/kube-router-iptables-restore" "$K8S_DIR/kube-router-path/iptables-restore"
  startd kube-router env PATH="$K8S_DIR/kube-router-path:$PATH" \
    NULLOPS_REAL_IPTABLES_RESTORE="$(command -v iptables-restore)" NULLOPS_REAL_IPTABLES_SAVE="$(command -v iptables-save)" \
    "$K8S_BIN/kube-router" --kubeconfig="$K8S_DIR/kube-router.kubeconfig" --hostname-override="$K8S_NODE_NAME" \
    --run-firewall=true --run-router=false --run-service-proxy=false \
    --service-cluster-ip-range="$K8S_SERVICE_CIDR" --service-node-port-range=30000-32767 \
    --health-port="$K8S_NETPOL_HEALTH_PORT" --metrics-port=0 --iptables-sync-period=5m --enable-ipv6=false --v=1
  netpol_synced() { # its jump from FORWARD and its default policy chain exist (first full sync done)
    local fwd
    fwd=$(iptables -S FORWARD 2>/dev/null) && grep -q -- '-j KUBE-ROUTER-FORWARD' <<<"$fwd" &&
      iptables -S KUBE-NWPLCY-DEFAULT >/dev/null 2>&1
  }
  waitfor kube-router 60 curl -sf "http://127.0.0.1:$K8S_NETPOL_HEALTH_PORT/healthz"
  waitfor kube-router 60 netpol_synced
  say "kube-router (NetworkPolicy) synced"
fi

# --- CoreDNS (built by build.sh from github.com/coredns/coredns) -------------
if [ "$K8S_WITH_DNS" = 1 ] && grep -qx "$K8S_COREDNS_IMAGE" <<<"$IMAGES"; then
  sed -e "s#@IMAGE@#$K8S_COREDNS_IMAGE#g" -e "s#@DNS_IP@#$K8S_DNS_IP#g" -e "s#@DOMAIN@#$K8S_CLUSTER_DOMAIN#g" \
    "$HERE/manifests/coredns.yaml" > "$K8S_DIR/manifests/coredns.yaml"
  k apply -f "$K8S_DIR/manifests/coredns.yaml" >/dev/null
  k -n kube-system rollout status deployment/coredns --timeout=120s >/dev/null
  say "CoreDNS ready at $K8S_DNS_IP"
fi

say "cluster ready"
echo "KUBECONFIG=$K8S_DIR/admin.kubeconfig"
