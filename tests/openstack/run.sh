#!/bin/bash
# CI entry point of the real-OpenStack suite: build the tests, start the loopback OpenStack
# (installing its Debian packages when missing), run autoscaler/tests/openstack_real.rs,
# and always stop the stack again. Exits non-zero when anything fails.
#
#   bash tests/openstack/run.sh              # from anywhere
#   KEEP_STACK=1 bash tests/openstack/run.sh # leave the stack running afterwards (debugging)
#
# Phase 1 runs every test but the token renewal one with normal (1 day) tokens; phase 1b
# runs the controller scenarios (tests/tests/scenarios_real.rs); phase 2
# restarts Keystone with 40 s tokens and runs the renewal test alone (short tokens for the
# whole suite would make every service re-authenticate on every call).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export STACK_DIR=${STACK_DIR:-/var/tmp/autoscaler-openstack}
T0=$(date +%s)
ts() { echo "[openstack run.sh $(( $(date +%s) - T0 ))s] $*"; }
cleanup() {
  rc=$?
  if [ "${KEEP_STACK:-0}" = 1 ]; then ts "KEEP_STACK=1: stack left running in $STACK_DIR"
  else bash "$HERE/down.sh" >/dev/null 2>&1 || true; ts "stack stopped"; fi
  ts "exit $rc"
  exit $rc
}
trap cleanup EXIT

cd "$ROOT"
SUITE=(cargo test -p autoscaler --test openstack_real)
SCENARIOS=(cargo test -p autoscaler-tests --test scenarios_real)
ts "building the suites"
"${SUITE[@]}" --no-run
"${SCENARIOS[@]}" --no-run
ts "starting the loopback OpenStack in $STACK_DIR"
bash "$HERE/up.sh"
export AUTOSCALER_TEST_STACK=$STACK_DIR
ts "phase 1: the suite"
"${SUITE[@]}" -- --ignored --test-threads=1 --skip token_renewal
ts "phase 1b: controller scenarios (real reconciler, fake GitLab over HTTP, this OpenStack)"
"${SCENARIOS[@]}" -- --ignored --test-threads=1
ts "phase 2: short tokens, renewal test"
bash "$HERE/keystone-token-lifetime.sh" 40
"${SUITE[@]}" -- --ignored --test-threads=1 --nocapture token_renewal
ts "all passed"
