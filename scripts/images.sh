#!/usr/bin/env bash
# Builds nullops/agent, nullops/server and nullops/ingress FROM scratch out of
# the static binaries in bin/ (run `make build` first) — nothing is pulled.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${TAG:-latest}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
ca=/etc/ssl/certs/ca-certificates.crt
[ -f "$ca" ] || { echo "images: $ca missing (apt-get install ca-certificates)" >&2; exit 1; }
cp "$ca" "$ctx/"
for b in nullops-agent nullops-server nullops-ingress; do
  [ -x "bin/$b" ] || { echo "images: bin/$b missing; run make build" >&2; exit 1; }
  cp "bin/$b" "$ctx/"
done
for img in agent server ingress; do
  docker build -q -f "Dockerfile.$img" -t "nullops/$img:$TAG" "$ctx" >/dev/null
  echo "built nullops/$img:$TAG"
done
