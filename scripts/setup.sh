#!/usr/bin/env bash
# Idempotently prepares this machine for `make test` and `make demo`:
#   - installs the Debian packages the suite needs when they are missing
#     (debootstrap builds the stand-in postgres image of the compose test),
#   - starts a throwaway PostgreSQL cluster owned by the postgres user,
#   - checks that the Docker daemon answers.
# Prints the environment to use (NULLOPS_TEST_DATABASE_URL) on stdout as
# `export` lines, so callers can `eval "$(scripts/setup.sh)"`.
set -euo pipefail

RUN_DIR=${NULLOPS_RUN_DIR:-/tmp/nullops-run}
PG_PORT=${NULLOPS_PG_PORT:-55432}
PACKAGES=(postgresql docker-registry chromium nginx-light wrk docker-compose debootstrap haproxy)

log() { echo "setup: $*" >&2; }

missing=()
command -v pg_ctlcluster >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
# haproxy: the load balancer in front of the server replicas of the
# high-availability tests (internal/testutil/hacluster).
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# debootstrap: the stand-in postgres:16 image of the docker-compose test
# (scripts/postgres-image.sh).
[ -x /usr/sbin/debootstrap ] || command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing packages: ${missing[*]}; run as root or install them: apt-get install ${missing[*]}"
    exit 1
  fi
  log "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
: "${PACKAGES[@]}"

# Docker ---------------------------------------------------------------------
if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  log "the Docker daemon does not answer. Start it (e.g. 'dockerd &' or 'service docker start') and check 'docker version'."
  exit 1
fi

# PostgreSQL -----------------------------------------------------------------
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PG_DATA="$RUN_DIR/pg"
mkdir -p "$RUN_DIR"
chmod 755 "$RUN_DIR"
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ ! -s "$PG_DATA/PG_VERSION" ]; then
  log "initialising PostgreSQL cluster in $PG_DATA"
  mkdir -p "$PG_DATA"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DATA"
  as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 >/dev/null
  cat >>"$PG_DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DATA'
max_connections = 400
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
fi
if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
  log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 start >/dev/null
fi
for _ in $(seq 1 50); do
  if "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT" -q; then break; fi
  sleep 0.2
done
"$PG_BIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT" -q || { log "PostgreSQL did not start; see $PG_DATA/server.log"; exit 1; }

echo "export NULLOPS_TEST_DATABASE_URL='postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable'"
echo "export NULLOPS_RUN_DIR='$RUN_DIR'"
