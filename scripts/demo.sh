#!/usr/bin/env bash
# `make demo`: prepares this machine (packages, a project-local PostgreSQL),
# builds the binaries and every image FROM scratch (nothing is pulled), then
# hands over to nullops-demo (scripts/demo/), which starts the registry,
# server, ingress and agent, deploys the demo project and waits for Ctrl-C.
#
# Settings (environment): NULLOPS_DEMO_DIR (state, default ./.run),
# NULLOPS_DEMO_PG_PORT (55433), NULLOPS_DEMO_{UI,INGRESS,REGISTRY,AGENT}_PORT
# (8080, 8000, 5001, 15000), NULLOPS_DEMO_ONCE=1 (stop right after printing).
set -euo pipefail
cd "$(dirname "$0")/.."

RUN_DIR=${NULLOPS_DEMO_DIR:-$PWD/.run}
mkdir -p "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
# PostgreSQL runs as the postgres user, which must be able to reach its data
# directory; a checkout under /root is not reachable, so fall back to /tmp.
if ! runuser -u postgres -- test -x "$RUN_DIR" 2>/dev/null && [ "$(id -u)" = 0 ]; then
  RUN_DIR=/tmp/nullops-demo
  mkdir -p "$RUN_DIR"
  echo "demo: $PWD/.run is not reachable by the postgres user; using $RUN_DIR" >&2
fi

eval "$(NULLOPS_RUN_DIR="$RUN_DIR" NULLOPS_PG_PORT="${NULLOPS_DEMO_PG_PORT:-55433}" bash scripts/setup.sh)"
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
stop_pg() { runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$RUN_DIR/pg" stop -m fast >/dev/null 2>&1 || true; }
trap stop_pg EXIT

# quiet runs a build step and shows its output only when it fails.
quiet() {
  local out
  if ! out=$("$@" 2>&1); then echo "$out" >&2; echo "demo: failed: $*" >&2; return 1; fi
}
echo "demo: building binaries and images" >&2
quiet make --no-print-directory build
quiet bash scripts/images.sh
quiet bash scripts/images/plugins.sh
ctx=$(mktemp -d)
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$ctx/app" ./scripts/images/demo-web
printf 'FROM scratch\nCOPY app /app\nEXPOSE 8080\nENTRYPOINT ["/app"]\n' >"$ctx/Dockerfile"
quiet docker build -q -t nullops-demo/web:latest "$ctx"
rm -rf "$ctx"
go build -o bin/nullops-demo ./scripts/demo

# Not exec: the trap must stop PostgreSQL after the demo has cleaned up.
# In the background, so that a signal bash gets (Ctrl-C, a closed terminal,
# `kill` of make or of this script) goes on to nullops-demo at once; it then
# deletes the deployment through the server and cleans up. bash waits for
# that: dying of the signal itself, it would stop PostgreSQL first.
bin/nullops-demo --run-dir "$RUN_DIR" --bin bin --pg "$NULLOPS_TEST_DATABASE_URL" &
demo_pid=$!
trap 'kill -INT "$demo_pid" 2>/dev/null || true' INT
trap 'kill -TERM "$demo_pid" 2>/dev/null || true' HUP TERM
while kill -0 "$demo_pid" 2>/dev/null; do wait "$demo_pid" || true; done
wait "$demo_pid" # its exit status
