#!/usr/bin/env bash
# Builds a stand-in for the postgres:16 image docker-compose.yml runs, without
# pulling from any registry: a minimal Debian rootfs (debootstrap, from the
# Debian mirror) with the distribution's PostgreSQL and an entrypoint that
# honours POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB like the official
# image, `docker import`ed under the given name (default postgres:16).
#
#   bash scripts/postgres-image.sh [image]
#
# The image is labelled nullops.recipe=<hash of this script>; when an image of
# that name with the same recipe exists, nothing is built (warm runs take a
# second). An image of that name NOT built by this script (e.g. the real
# postgres:16) is left alone and used as is.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

IMAGE=${1:-postgres:16}
SUITE=${NULLOPS_DEBIAN_SUITE:-bookworm}
MIRROR=${NULLOPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
RECIPE=$( (cat "$0"; echo "$SUITE") | sha256sum | cut -c1-16)

log() { echo "postgres-image: $*" >&2; }

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  have=$(docker image inspect -f '{{index .Config.Labels "nullops.recipe"}}' "$IMAGE" 2>/dev/null || true)
  if [ -z "$have" ]; then
    log "$IMAGE exists and was not built by this script; using it"
    exit 0
  fi
  if [ "$have" = "$RECIPE" ]; then
    log "$IMAGE is up to date (recipe $RECIPE)"
    exit 0
  fi
  log "$IMAGE was built from another recipe ($have); rebuilding"
fi

command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install debootstrap (scripts/setup.sh does)"; exit 1; }
[ "$(id -u)" = 0 ] || { log "debootstrap needs root"; exit 1; }

WORK=$(mktemp -d /tmp/nullops-pgimage.XXXXXX)
ROOT="$WORK/rootfs"
# debootstrap mounts proc and sys in the target while it runs: never let
# the cleanup descend into them.
trap 'umount "$ROOT/proc" "$ROOT/sys" 2>/dev/null || true; rm -rf --one-file-system "$WORK"' EXIT
log "debootstrap $SUITE with postgresql into $ROOT (a few minutes on a cold run)"
debootstrap --variant=minbase --include=postgresql "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
  tail -30 "$WORK/debootstrap.log" >&2
  exit 1
}
PGBIN=$(ls -d "$ROOT"/usr/lib/postgresql/*/bin | sort -V | tail -1)
PGBIN=${PGBIN#"$ROOT"}

# The cluster Debian's package created is not used: the entrypoint creates
# one in PGDATA on first start, like the official image.
rm -rf "$ROOT"/var/lib/postgresql/* "$ROOT"/etc/postgresql/* "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* \
  "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/*

cat >"$ROOT/usr/local/bin/docker-entrypoint.sh" <<'ENTRY'
#!/bin/sh
# Entry point of the stand-in postgres image: initialise PGDATA on first
# start from POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, then run
# postgres in the foreground as the postgres user (it receives the signals).
set -eu
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pw=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pw"
  chown postgres "$pw"
  as_pg initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pw" -E UTF8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pw"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    # A private socket: health checks (pg_isready) must not see this
    # temporary server as the database being ready.
    as_pg pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/tmp" -w start >/dev/null
    as_pg psql -q -v ON_ERROR_STOP=1 -h /tmp -U "$POSTGRES_USER" -d postgres \
      -c "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\""
    as_pg pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  fi
  echo "postgres-image: initialised $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA"
ENTRY
chmod 755 "$ROOT/usr/local/bin/docker-entrypoint.sh"

log "importing as $IMAGE"
tar -C "$ROOT" -c . | docker import \
  --change "ENV PATH=$PGBIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV PGDATA=/var/lib/postgresql/data" \
  --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
  --change 'EXPOSE 5432' \
  --change "LABEL nullops.recipe=$RECIPE" \
  - "$IMAGE" >/dev/null
log "built $IMAGE (recipe $RECIPE)"
