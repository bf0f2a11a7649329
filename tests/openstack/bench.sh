#!/bin/bash
# Benchmark of the OpenStack client against the loopback stack: 50 servers, 10 at a time
# (override: bench.sh COUNT CONCURRENCY). Starts the stack unless one is already answering
# (then it is left running), raises the demo project's quota, runs the example.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export STACK_DIR=${STACK_DIR:-/var/tmp/autoscaler-openstack}
COUNT=${1:-50} CONC=${2:-10}
cd "$ROOT"
cargo build -p autoscaler --example openstack_create
if ! curl -s -o /dev/null --max-time 2 http://127.0.0.1:8774/; then
  trap 'bash "$HERE/down.sh" >/dev/null 2>&1 || true' EXIT
  bash "$HERE/up.sh"
fi
OS_CLIENT_CONFIG_FILE=$STACK_DIR/clouds.yaml /usr/bin/openstack --os-cloud admin quota set \
  --instances $((COUNT + 10)) --cores $((COUNT + 20)) --ram $(( (COUNT + 10) * 512 )) demo
AUTOSCALER_TEST_STACK=$STACK_DIR cargo run -q -p autoscaler --example openstack_create -- "$COUNT" "$CONC"
