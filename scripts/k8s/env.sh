# Shared settings of the test cluster scripts (build.sh, start.sh, stop.sh,
# check.sh; sourced, not run). Every value can be overridden from the
# environment. docs/kubernetes.md explains the cluster.

K8S_VERSION=${K8S_VERSION:-v1.32.4}          # k8s.io/kubernetes module version (staging modules: v0.32.4)
COREDNS_VERSION=${COREDNS_VERSION:-v1.12.0}  # github.com/coredns/coredns module version
KUBE_ROUTER_VERSION=${KUBE_ROUTER_VERSION:-v2.1.0}  # github.com/cloudnativelabs/kube-router/v2 (NetworkPolicy only)

# Build outputs (binaries, image tarballs, the generated Go module). Cache this
# directory (with GOMODCACHE and GOCACHE) between CI runs.
K8S_CACHE=${K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nullops-k8s}
K8S_BIN=${K8S_BIN:-$K8S_CACHE/bin}
K8S_IMAGES=${K8S_IMAGES:-$K8S_CACHE/images}

# Runtime state: certificates, etcd data, containerd root/state/socket, kubelet
# root, logs, pid files. stop.sh removes it. Must be on a filesystem where
# overlayfs works (ext4/xfs; not overlay or tmpfs-on-overlay).
K8S_DIR=${K8S_DIR:-/tmp/k8s}

K8S_NODE_NAME=${K8S_NODE_NAME:-nullops-node}
K8S_POD_CIDR=${K8S_POD_CIDR:-10.244.0.0/24}      # one node: host-local IPAM hands out this /24
K8S_SERVICE_CIDR=${K8S_SERVICE_CIDR:-10.96.0.0/24}
K8S_API_SERVICE_IP=${K8S_API_SERVICE_IP:-10.96.0.1}  # first IP of K8S_SERVICE_CIDR
K8S_DNS_IP=${K8S_DNS_IP:-10.96.0.10}
K8S_BRIDGE=${K8S_BRIDGE:-nk8s0}                   # CNI bridge name (keep <= 15 chars)
K8S_API_PORT=${K8S_API_PORT:-6443}
K8S_ETCD_PORT=${K8S_ETCD_PORT:-2379}              # peer = +1, metrics = +2
K8S_CLUSTER_DOMAIN=${K8S_CLUSTER_DOMAIN:-cluster.local}

# Images built FROM scratch by build.sh; nothing is ever pulled.
K8S_PAUSE_IMAGE=${K8S_PAUSE_IMAGE:-localhost/nullops/pause:v1}
K8S_WEB_IMAGE=${K8S_WEB_IMAGE:-localhost/nullops/web:v1}
K8S_COREDNS_IMAGE=${K8S_COREDNS_IMAGE:-localhost/nullops/coredns:v1}
K8S_WITH_DNS=${K8S_WITH_DNS:-1}                   # start.sh deploys CoreDNS when its image exists
K8S_NETPOL=${K8S_NETPOL:-1}                       # start.sh runs kube-router (firewall only) when its binary exists
K8S_NETPOL_HEALTH_PORT=${K8S_NETPOL_HEALTH_PORT:-20244}  # kube-router's /healthz

# The node's InternalIP: the address of the default-route interface (no packet is sent).
if [ -z "${K8S_NODE_IP:-}" ]; then
  _dev=$(ip -4 route show default 2>/dev/null | awk '{for(i=1;i<NF;i++) if($i=="dev"){print $(i+1); exit}}')
  [ -n "$_dev" ] && K8S_NODE_IP=$(ip -4 -o addr show dev "$_dev" | awk '{split($4,a,"/"); print a[1]; exit}')
  unset _dev
fi

export KUBECONFIG=${KUBECONFIG_OVERRIDE:-$K8S_DIR/admin.kubeconfig}
CTR="ctr -a $K8S_DIR/containerd.sock -n k8s.io"

kubectl_bin() {
  if [ -x "$K8S_BIN/kubectl" ]; then echo "$K8S_BIN/kubectl"; else command -v kubectl; fi
}
