#!/usr/bin/env bash
# The whole suite: set up what is missing, then vet and test everything
# against real PostgreSQL, Docker, docker-registry and Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/setup.sh)"
export NULLOPS_TEST_DATABASE_URL NULLOPS_RUN_DIR
start=$(date +%s)
go vet ./...
go test -count=1 -timeout 30m "$@" ./...
# The test-only build of the agent (-tags nullopsdebug: its event listener).
go vet -tags nullopsdebug ./agent/app/ ./agent/config/
go test -count=1 -tags nullopsdebug "$@" ./agent/config/
# The packages whose concurrency is their job run again under the race
# detector (the whole suite under -race would not fit the time budget).
go test -race -count=1 -timeout 20m "$@" ./agent/channel/ ./agent/journal/ ./agent/state/ \
  ./ingress/... ./server/ingresspub/ ./server/changefeed/ ./server/auth/ ./server/agents/
echo "make test: suite finished in $(( $(date +%s) - start ))s"
