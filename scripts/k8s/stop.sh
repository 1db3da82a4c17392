#!/usr/bin/env bash
# stop.sh — stop the cluster that start.sh started and undo its host changes:
# pods (CNI teardown), daemons (by PID file, after checking the PID is ours),
# leftover containers/shims, mounts under $K8S_DIR, KUBE-*/CNI/NULLOPS iptables
# chains, kube-router's ipsets, the CNI bridge, kubelet cgroups, sysctls; then
# removes $K8S_DIR
# (K8S_KEEP=1 keeps it for debugging). Safe to run twice or after a failed start.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/env.sh"
[ "$(id -u)" = 0 ] || { echo "stop.sh: must run as root" >&2; exit 1; }
T0=$(date +%s)
say() { echo "[stop $(( $(date +%s) - T0 ))s] $*"; }

pidof_ours() { # name -> PID if the PID file names a live process whose command line mentions $K8S_DIR
  local f="$K8S_DIR/run/$1.pid" p
  [ -s "$f" ] || return 1
  p=$(cat "$f")
  [ -r "/proc/$p/cmdline" ] && tr '\0' ' ' < "/proc/$p/cmdline" | grep -qF -- "$K8S_DIR" && echo "$p"
}
stopd() { # name... : SIGTERM them together, SIGKILL whatever is left after 15 s
  local n p i pids="" names=""
  for n in "$@"; do
    if p=$(pidof_ours "$n"); then kill -TERM "$p" 2>/dev/null; pids="$pids $p"; names="$names $n($p)"; fi
    rm -f "$K8S_DIR/run/$n.pid"
  done
  [ -n "$pids" ] || return 0
  for i in $(seq 150); do
    for p in $pids; do [ -d "/proc/$p" ] && break; p=""; done
    [ -z "$p" ] && break
    sleep 0.1
  done
  for p in $pids; do [ -d "/proc/$p" ] && kill -KILL "$p" 2>/dev/null; done
  say "stopped$names"
}

if [ -d "$K8S_DIR" ]; then
  KUBECTL=$(kubectl_bin)
  k() { timeout 20 "$KUBECTL" --kubeconfig "$K8S_DIR/admin.kubeconfig" --request-timeout=10s "$@"; }
  # 1. No new pods, then let the kubelet tear every pod down (CNI DEL frees IPs/iptables).
  stopd kube-controller-manager kube-scheduler
  if pidof_ours kube-apiserver >/dev/null && pidof_ours kubelet >/dev/null; then
    k delete pods --all --all-namespaces --force --grace-period=0 --wait=false >/dev/null 2>&1
    for i in $(seq 120); do
      running=$($CTR tasks ls 2>/dev/null | awk 'NR>1 && $3=="RUNNING"' | wc -l)
      ips=$(ls "$K8S_DIR/cni/ipam/nullops-k8s" 2>/dev/null | grep -c '^[0-9]')
      [ "$running" = 0 ] && [ "$ips" = 0 ] && break
      sleep 0.5
    done
    say "pods torn down (running tasks: $running, pod IPs held: $ips)"
  fi
  # 2. Daemons, top down.
  stopd kube-router kube-proxy kubelet kube-apiserver
  stopd etcd
  # 3. Whatever containers survived: kill them with runc directly.
  RUNC_ROOT="$K8S_DIR/containerd/runc/k8s.io"
  if [ -d "$RUNC_ROOT" ]; then
    for id in $(runc --root "$RUNC_ROOT" list -q 2>/dev/null); do
      runc --root "$RUNC_ROOT" kill "$id" KILL 2>/dev/null
      runc --root "$RUNC_ROOT" delete -f "$id" 2>/dev/null
    done
  fi
  stopd containerd
  # Shims of our containerd (identified by our socket path), if any outlived it.
  for p in $(pgrep -f -- "-address $K8S_DIR/containerd.sock" 2>/dev/null); do
    tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q '^/usr/bin/containerd-shim' && kill -KILL "$p" 2>/dev/null
  done
  # 4. Mounts under $K8S_DIR (overlay rootfs, netns, shm, tmpfs/projected volumes), deepest first.
  for i in 1 2 3; do
    mnts=$(awk -v d="$K8S_DIR/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r)
    [ -z "$mnts" ] && break
    for m in $mnts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
  done
  say "daemons stopped, mounts under $K8S_DIR released"
fi

# 5. iptables: kube-proxy's own cleanup, then the kubelet's KUBE-* chains, CNI
#    chains of our network, and our FORWARD exception. Docker's rules are untouched.
[ -x "$K8S_BIN/kube-proxy" ] && "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1
for ipt in iptables ip6tables; do
  command -v $ipt >/dev/null || continue
  for t in filter nat mangle; do
    $ipt -t $t -S 2>/dev/null | grep -E '^-A [A-Z]+ .*-j (KUBE-|NULLOPS-K8S-)' | grep -vE '^-A (KUBE-|CNI-)' | \
      while read -r rule; do eval "$ipt -t $t ${rule/-A /-D }" 2>/dev/null; done
    $ipt -t $t -S 2>/dev/null | grep -F '"name: \"nullops-k8s\"' | grep -E '^-A [A-Z]+ ' | \
      while read -r rule; do eval "$ipt -t $t ${rule/-A /-D }" 2>/dev/null; done
    for c in $($ipt -t $t -S 2>/dev/null | awk '/^-N (KUBE-|NULLOPS-K8S-)/ {print $2}'); do $ipt -t $t -F "$c" 2>/dev/null; done
    for c in $($ipt -t $t -S 2>/dev/null | awk '/^-N (KUBE-|NULLOPS-K8S-)/ {print $2}'); do $ipt -t $t -X "$c" 2>/dev/null; done
  done
done
# CNI per-pod masquerade chains (CNI-<hash>) that are no longer referenced.
NAT=$(iptables -t nat -S 2>/dev/null)
for c in $(awk '/^-N CNI-[0-9a-f]+$/ {print $2}' <<<"$NAT"); do
  if ! grep -q -- "-j $c\$" <<<"$NAT" && grep -q 'nullops-k8s' <<<"$(iptables -t nat -S "$c")"; then
    iptables -t nat -F "$c"; iptables -t nat -X "$c"
  fi
done
say "iptables cleaned"
# kube-router's ipsets (KUBE-SRC-*/KUBE-DST-*: its NetworkPolicy address sets);
# possible only now that no rule refers to them.
if command -v ipset >/dev/null; then
  for set in $(ipset list -n 2>/dev/null | grep -E '^KUBE-(SRC|DST)-'); do ipset destroy "$set" 2>/dev/null; done
fi

# 6. The CNI bridge and any veths left on it.
if ip link show "$K8S_BRIDGE" >/dev/null 2>&1; then
  for v in $(ip -o link show master "$K8S_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do ip link del "$v" 2>/dev/null; done
  ip link del "$K8S_BRIDGE" 2>/dev/null && say "bridge $K8S_BRIDGE removed"
fi

# 7. kubelet cgroups (cgroup v1 controllers and v2/unified), leaves first.
for base in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods /sys/fs/cgroup/*/kubepods.slice /sys/fs/cgroup/kubepods.slice; do
  [ -d "$base" ] && find "$base" -depth -type d -exec rmdir {} \; 2>/dev/null
done

if [ -d "$K8S_DIR" ]; then
  # 8. sysctls back to what they were before start.sh.
  if [ -f "$K8S_DIR/sysctl.saved" ]; then
    while IFS='=' read -r key val; do sysctl -qw "$key=$val" 2>/dev/null; done < "$K8S_DIR/sysctl.saved"
    say "sysctls restored"
  fi
  # 9. Host directories that only exist because of us.
  if [ -d /var/log/containers ]; then
    find /var/log/containers -maxdepth 1 -type l -lname "$K8S_DIR/*" -delete 2>/dev/null
  fi
  rm -f /var/lib/cni/results/nullops-k8s-* 2>/dev/null
  if [ -f "$K8S_DIR/host-dirs-created" ] && grep -qx /var/lib/kubelet/device-plugins "$K8S_DIR/host-dirs-created"; then
    rm -f /var/lib/kubelet/device-plugins/kubelet.sock
  fi
  if [ -f "$K8S_DIR/host-dirs-created" ]; then
    while read -r d; do rmdir "$d" 2>/dev/null; done < "$K8S_DIR/host-dirs-created"
  fi
  if [ "${K8S_KEEP:-0}" = 1 ]; then
    say "kept $K8S_DIR (K8S_KEEP=1)"
  else
    rm -rf "$K8S_DIR" && say "removed $K8S_DIR"
  fi
fi
say "done"
