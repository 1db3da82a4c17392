#!/usr/bin/env bash
# The whole suite: set up what is missing, then vet and test everything
# against real PostgreSQL, Docker, docker-registry and Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/setup.sh)"
export NULLOPS_TEST_DATABASE_URL NULLOPS_RUN_DIR
start=$(date +%s)

# The Kubernetes test cluster (scripts/k8s, docs/kubernetes.md): where it can
# run (root), build it (cached: seconds when warm), start it, and run the whole
# suite with NULLOPS_K8S=1 so the Kubernetes tests run too; stop it on exit,
# also when a test fails. A cluster that is already up (started by hand with
# scripts/k8s/start.sh) is used and left running: one cluster per machine.
# NULLOPS_K8S=0 skips the Kubernetes tests (refused when CI=true, as is a
# machine where the cluster cannot run: CI must not pass by skipping them).
k8s_fail() { echo "make test: FAILED: $*" >&2; exit 1; }
k8s_stop() {
  local t=$(date +%s)
  bash scripts/k8s/stop.sh >/tmp/nullops-k8s-stop.log 2>&1 || true
  echo "make test: Kubernetes test cluster stopped in $(( $(date +%s) - t ))s"
}
if [ "${NULLOPS_K8S:-}" = 0 ]; then
  [ "${CI:-}" = true ] && k8s_fail "NULLOPS_K8S=0 with CI=true: the Kubernetes tests must run in CI"
  echo "make test: NULLOPS_K8S=0: Kubernetes tests skipped"
elif [ "$(id -u)" != 0 ]; then
  [ "${CI:-}" = true ] && k8s_fail "the Kubernetes test cluster needs root (CI runs as root)"
  echo "make test: not root: no Kubernetes test cluster here, Kubernetes tests skipped"
  unset NULLOPS_K8S
else
  t=$(date +%s)
  bash scripts/k8s/build.sh > /tmp/nullops-k8s-build.log 2>&1 ||
    { tail -30 /tmp/nullops-k8s-build.log >&2; k8s_fail "scripts/k8s/build.sh (log: /tmp/nullops-k8s-build.log)"; }
  how="warm cache, nothing compiled"
  grep -q '\] go build' /tmp/nullops-k8s-build.log && how="compiled: $(grep -o '\] go build [a-z-]*' /tmp/nullops-k8s-build.log | awk '{print $4}' | sort -u | tr '\n' ' ')"
  echo "make test: Kubernetes test cluster built in $(( $(date +%s) - t ))s ($how)"
  st=0; status=$(bash scripts/k8s/status.sh) || st=$?
  for _ in $(seq 12); do   # a cluster that is starting or busy: up to a minute
    [ $st = 2 ] || break
    sleep 5; st=0; status=$(bash scripts/k8s/status.sh) || st=$?
  done
  if [ $st = 0 ]; then
    echo "make test: using the running cluster: $status"
  elif [ $st = 2 ]; then
    k8s_fail "a Kubernetes test cluster runs here but does not answer: $status (stop it with scripts/k8s/stop.sh)"
  else
    t=$(date +%s)
    bash scripts/k8s/stop.sh >/dev/null 2>&1 || true   # leftovers of a run that was killed
    trap k8s_stop EXIT
    bash scripts/k8s/start.sh > /tmp/nullops-k8s-start.log 2>&1 ||
      { tail -40 /tmp/nullops-k8s-start.log >&2; k8s_fail "scripts/k8s/start.sh could not start the Kubernetes test cluster (log: /tmp/nullops-k8s-start.log, daemons: /tmp/k8s/log)"; }
    echo "make test: Kubernetes test cluster started in $(( $(date +%s) - t ))s: $(bash scripts/k8s/status.sh)"
  fi
  export NULLOPS_K8S=1 KUBECONFIG=/tmp/k8s/admin.kubeconfig
fi

go vet ./...
go test -count=1 -timeout 30m "$@" ./...
# With the cluster: the executor's tests that are common to both runtimes
# (and its Kubernetes-only sync test) again on the Kubernetes runtime; ~3 min.
if [ "${NULLOPS_K8S:-}" = 1 ]; then
  NULLOPS_RUNTIME=kubernetes go test -count=1 -timeout 20m "$@" -run \
    'TestPluginRetries|TestCancelMidPipeline|TestDeleteRightAfterDeploy|TestCrashLoopingServiceIsReported|TestOOMKilledServiceIsReported|TestServiceExitingDuringHealthWaitFailsAtOnce|TestServiceLogsAreMasked|TestPluginGetsOnlyTheSecretsItsParamsReference|TestKubeSyncReconciles' \
    ./agent/executor/
fi
# The test-only build of the agent (-tags nullopsdebug: its event listener).
go vet -tags nullopsdebug ./agent/app/ ./agent/config/
go test -count=1 -tags nullopsdebug "$@" ./agent/config/
# The packages whose concurrency is their job run again under the race
# detector (the whole suite under -race would not fit the time budget).
go test -race -count=1 -timeout 20m "$@" ./agent/channel/ ./agent/journal/ ./agent/state/ \
  ./ingress/... ./server/ingresspub/ ./server/changefeed/ ./server/auth/ ./server/agents/
echo "make test: suite finished in $(( $(date +%s) - start ))s"
