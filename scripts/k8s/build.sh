#!/usr/bin/env bash
# build.sh — everything the single-node Kubernetes test cluster needs, from the
# two registries the project's machines reach:
#   * Debian packages (apt): etcd-server, containerd, runc, containernetworking-plugins,
#     iptables, ipset, conntrack, openssl, curl, iproute2
#   * the Go module proxy: k8s.io/kubernetes $K8S_VERSION (kube-apiserver,
#     kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl), a
#     slim CoreDNS, kube-router (NetworkPolicy enforcement only) and three tiny
#     programs of ours: pause, web (test server), mkimage (writes FROM-scratch
#     OCI image archives; no registry, no Docker).
# Outputs go to $K8S_CACHE (default ~/.cache/nullops-k8s): bin/ and images/.
# Re-running is cheap: each binary is rebuilt only when its go.mod/go.sum (and
# the Go version) change; the stamps live next to the binaries. A cold build
# takes 10-15 minutes on 2 cores (docs/kubernetes.md has the measurements).
#   K8S_SKIP_APT=1   don't apt-get (packages already there)
#   K8S_NO_DNS=1     skip CoreDNS
#   K8S_NO_NETPOL=1  skip kube-router (NetworkPolicy is then accepted but not enforced)
#   K8S_CMDS="…"     which k8s.io/kubernetes/cmd/* to build (kubectl may be dropped if one is on PATH)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/env.sh"
ts() { date +%s; }
T0=$(ts)
log() { echo "[build $(( $(ts) - T0 ))s] $*"; }

# --- Debian packages ---------------------------------------------------------
PKGS="etcd-server containerd runc containernetworking-plugins iptables ipset conntrack openssl curl iproute2"
missing=""
for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"; done
if [ -n "$missing" ] && [ "${K8S_SKIP_APT:-0}" != 1 ]; then
  log "apt-get install$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Keep the packaged etcd (and containerd) services from starting on install:
  # start.sh runs its own. Use a temporary policy-rc.d when the image has none.
  tmp_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; tmp_policy=1
  fi
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  if [ $tmp_policy = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
log "packages ok"

mkdir -p "$K8S_BIN" "$K8S_IMAGES"
# One build at a time per cache (two concurrent runs would write the same files).
exec 9>"$K8S_CACHE/.build.lock"
flock 9
export CGO_ENABLED=0
GOV=$(go env GOVERSION)

# --- Kubernetes binaries ---------------------------------------------------
K8S_CMDS=${K8S_CMDS:-"kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl"}
stamp="$K8S_VERSION $GOV $(cat "$HERE/gomod/k8s/go.mod" "$HERE/gomod/k8s/go.sum" | sha256sum | cut -c1-16)"
need=0
for c in $K8S_CMDS; do [ -x "$K8S_BIN/$c" ] || need=1; done
[ "$(cat "$K8S_BIN/.k8s-stamp" 2>/dev/null)" = "$stamp" ] || need=1
if [ $need = 1 ]; then
  ver=${K8S_VERSION#v}; major=${ver%%.*}; minor=${ver#*.}; minor=${minor%%.*}
  LD="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LD="$LD -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    LD="$LD -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.gitTreeState=clean"
    LD="$LD -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  pkgs=""; for c in $K8S_CMDS; do pkgs="$pkgs k8s.io/kubernetes/cmd/$c"; done
  log "go build$pkgs (cold: ~8-10 min on 2 cores; warm GOCACHE: ~1-2 min)"
  (cd "$HERE/gomod/k8s" && go mod download && go build -buildvcs=false -trimpath -ldflags "$LD" -o "$K8S_BIN/" $pkgs)
  echo "$stamp" > "$K8S_BIN/.k8s-stamp"
fi
log "kubernetes $("$K8S_BIN/kube-apiserver" --version) binaries ok"

# --- CoreDNS (slim plugin set, separate module so k8s keeps its own pins) -----
if [ "${K8S_NO_DNS:-0}" != 1 ]; then
  stamp="$GOV $(cat "$HERE/gomod/coredns/"* | sha256sum | cut -c1-16)"
  if [ ! -x "$K8S_BIN/coredns" ] || [ "$(cat "$K8S_BIN/.coredns-stamp" 2>/dev/null)" != "$stamp" ]; then
    log "go build coredns $COREDNS_VERSION"
    (cd "$HERE/gomod/coredns" && go mod download && go build -buildvcs=false -trimpath -ldflags "-s -w" -o "$K8S_BIN/coredns" .)
    echo "$stamp" > "$K8S_BIN/.coredns-stamp"
  fi
  log "coredns ok"
fi

# --- kube-router, firewall only (NetworkPolicy); its own module and pins ------
if [ "${K8S_NO_NETPOL:-0}" != 1 ]; then
  stamp="$KUBE_ROUTER_VERSION $GOV $(cat "$HERE/gomod/kube-router/go.mod" "$HERE/gomod/kube-router/go.sum" | sha256sum | cut -c1-16)"
  if [ ! -x "$K8S_BIN/kube-router" ] || [ "$(cat "$K8S_BIN/.kube-router-stamp" 2>/dev/null)" != "$stamp" ]; then
    log "go build kube-router $KUBE_ROUTER_VERSION"
    (cd "$HERE/gomod/kube-router" && go mod download && go build -buildvcs=false -trimpath \
      -ldflags "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION" \
      -o "$K8S_BIN/kube-router" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router)
    echo "$stamp" > "$K8S_BIN/.kube-router-stamp"
  fi
  log "kube-router ok"
fi

# --- FROM-scratch images -----------------------------------------------------------
(cd "$HERE/images" && go build -buildvcs=false -trimpath -ldflags "-s -w" -o "$K8S_BIN/" ./pause ./web ./mkimage)
"$K8S_BIN/mkimage" -bin "$K8S_BIN/pause" -name "$K8S_PAUSE_IMAGE" -o "$K8S_IMAGES/pause.tar" >/dev/null
"$K8S_BIN/mkimage" -bin "$K8S_BIN/web" -name "$K8S_WEB_IMAGE" -port 8080 -o "$K8S_IMAGES/web.tar" >/dev/null
if [ -x "$K8S_BIN/coredns" ] && [ "${K8S_NO_DNS:-0}" != 1 ]; then
  "$K8S_BIN/mkimage" -bin "$K8S_BIN/coredns" -name "$K8S_COREDNS_IMAGE" -port 53 -o "$K8S_IMAGES/coredns.tar" >/dev/null
else
  rm -f "$K8S_IMAGES/coredns.tar"
fi
log "images: $(cd "$K8S_IMAGES" && ls *.tar | tr '\n' ' ')"
log "done; binaries in $K8S_BIN"
