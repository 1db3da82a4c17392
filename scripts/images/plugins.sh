#!/usr/bin/env bash
# Builds the first-party plugin images FROM scratch: each plugin in plugins/
# (except sdk) is compiled to a static binary and packed with its own
# Dockerfile as nullops/plugin-<name>:$TAG. Nothing is pulled.
set -euo pipefail
cd "$(dirname "$0")/../.."
TAG=${TAG:-latest}
for dir in plugins/*/; do
  name=$(basename "$dir")
  [ "$name" = sdk ] && continue
  [ -f "$dir/Dockerfile" ] || continue
  ctx=$(mktemp -d)
  CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$ctx/$name" "./$dir"
  docker build -q -f "$dir/Dockerfile" -t "nullops/plugin-$name:$TAG" "$ctx" >/dev/null
  rm -rf "$ctx"
  echo "built nullops/plugin-$name:$TAG"
done
